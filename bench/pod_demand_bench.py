"""Benchmark: the memory and time of ``demand.kind: kubernetes`` following a large batch cluster's pods.

Builds N pods as a Spark-on-Kubernetes cluster holds them (jobs of one driver and 49 executors, ``--teams``
namespaces, a few sizes; each pod with what the API server really sends: ``managedFields``, env, ports, volume
mounts, projected service-account volumes, owner references, tolerations, status conditions and container
statuses; most bound and running, the rest pending with an ``Unschedulable`` condition), serves them from the
Kubernetes API stand-in the tests use (``tests/agent/kube_pods.py``'s ``PodsApiServer``, in a process of its own
so that its copy of the pods is not counted), then measures, each in a fresh process so that its peak is its own:

- ``followed``: what the broker does, ``ClusterPods`` listing the pods (then watching) and ``PodReader`` reading
  the copy into demand classes;
- ``whole``: the same list decoded whole with ``orjson`` and every pod kept as sent (what ``ClusterPods`` did
  before it kept only the fields the broker reads), read by the same ``PodReader``.

Figures: the list's size on the wire, the time to the first list (``wait_first_list``), the process's peak RSS
(``ru_maxrss``) and its RSS once listed, the first read (every pod read) and an unchanged read (the cycle's cost
when no pod changed), and the classes made (which must be the same in both modes).

Usage: ``python bench/pod_demand_bench.py --pods 100000 [--teams 50] [--modes followed,whole] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from kubernetes import client

from broker.model import TeamBinding
from broker.service.control.kubernetes_demand import PodReader
from broker.service.extender import Conventions
from plugins.kubernetes.informer import Informer
from plugins.kubernetes.pods import UNFINISHED, ClusterPods

DOMAIN = "broker.elastic.io"
PODS_PER_JOB = 50
SIZES = ((1000, "2Gi"), (2000, "4Gi"), (2000, "8Gi"), (4000, "8Gi"), (4000, "16Gi"), (8000, "32Gi"))
"""Executor sizes (batch-cpu in millicores, batch-memory); a job's executors share one."""
BOUND = 0.8
"""Of each job's executors, this fraction is bound and running; the rest are pending."""
SPARK_IMAGE = "registry.example.com/spark:3.5.1"
NODE_MESSAGE = "0/5000 nodes are available: 5000 Insufficient broker.elastic.io/batch-memory."


def _uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _managed_fields(role: str, bound: bool, when: str) -> list[dict[str, Any]]:
    """What server-side field tracking records: the submitter's fields and the kubelet's (or, for a pending
    pod, the scheduler's) status, each a ``fieldsV1`` tree mirroring the object."""
    container = {".": {}, "f:env": {".": {}, 'k:{"name":"SPARK_USER"}': {".": {}, "f:name": {}, "f:value": {}}},
                 "f:image": {}, "f:name": {}, "f:resources": {".": {}, "f:limits": {}, "f:requests": {}}}
    fields = [{"manager": "spark-submit" if role == "driver" else "okhttp", "operation": "Update",
               "apiVersion": "v1", "time": when, "fieldsType": "FieldsV1",
               "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:spark-app-selector": {}, "f:spark-role": {}}},
                            "f:spec": {"f:containers": {f'k:{{"name":"spark-kubernetes-{role}"}}': container}}}}]
    status = ({"f:conditions": {".": {}, 'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
               "f:containerStatuses": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}} if bound else
              {"f:conditions": {".": {}, 'k:{"type":"PodScheduled"}': {".": {}, "f:message": {}, "f:reason": {}}}})
    fields.append({"manager": "kubelet" if bound else "kube-scheduler", "operation": "Update", "apiVersion": "v1",
                   "time": when, "fieldsType": "FieldsV1", "fieldsV1": {"f:status": status},
                   "subresource": "status"})
    return fields


def spark_pod(rng: random.Random, job: int, index: int, teams: int, app: str, driver_uid: str,
              bound: bool) -> dict[str, Any]:
    """Pod ``index`` of Spark job ``job`` (0: its driver) as the API server lists it."""
    role = "driver" if index == 0 else "executor"
    team = f"team-{job % teams}"
    cpu, memory = (1000, "4Gi") if role == "driver" else SIZES[job % len(SIZES)]
    name = f"{app}-driver" if role == "driver" else f"{app}-exec-{index}"
    when = f"2026-11-21T{(job // 60) % 24:02d}:{job % 60:02d}:{index % 60:02d}Z"
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    env = [{"name": "SPARK_USER", "value": "spark"}, {"name": "SPARK_APPLICATION_ID", "value": f"spark-{app[-8:]}"},
           {"name": "SPARK_CONF_DIR", "value": "/opt/spark/conf"},
           {"name": "SPARK_POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}]
    if role == "executor":
        env += [{"name": "SPARK_EXECUTOR_ID", "value": str(index)},
                {"name": "SPARK_DRIVER_URL", "value": f"spark://CoarseGrainedScheduler@{app}-svc.{team}.svc:7078"}]
    batch = {f"{DOMAIN}/batch-cpu": str(cpu), f"{DOMAIN}/batch-memory": memory}
    labels = {"spark-app-selector": f"spark-{app[-8:]}", "spark-role": role,
              **({"spark-exec-id": str(index)} if role == "executor" else {})}
    if job % 4 == 0:
        labels[f"{DOMAIN}/class"] = f"etl-{job}"
    metadata: dict[str, Any] = {
        "name": name, "namespace": team, "uid": driver_uid if role == "driver" else _uid(rng),
        "resourceVersion": str(rng.randrange(10**8, 10**9)), "creationTimestamp": when, "labels": labels,
        "managedFields": _managed_fields(role, bound, when),
    }
    if role == "executor":
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": f"{app}-driver",
                                        "uid": driver_uid, "controller": True}]
    container = {
        "name": f"spark-kubernetes-{role}", "image": SPARK_IMAGE, "args": [role], "env": env,
        "ports": [{"name": "blockmanager", "containerPort": 7079, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", **batch}, "limits": batch},
        "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-1"},
                         {"name": "kube-api-access", "readOnly": True,
                          "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
    }
    spec: dict[str, Any] = {
        "volumes": [{"name": "spark-local-dir-1", "emptyDir": {}},
                    {"name": "kube-api-access", "projected": {"sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}],
        "containers": [container], "restartPolicy": "Never", "serviceAccountName": "spark",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "priorityClassName": "batch-low", "priority": 100,
    }
    if bound:
        spec["nodeName"] = f"node-{rng.randrange(5000):05d}"
        status: dict[str, Any] = {
            "phase": "Running",
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": when}
                           for kind in ("Initialized", "Ready", "PodScheduled")],
            "podIP": ip, "startTime": when,
            "containerStatuses": [{"name": container["name"], "state": {"running": {"startedAt": when}},
                                   "ready": True, "restartCount": 0,
                                   "containerID": f"containerd://{rng.getrandbits(128):032x}"}],
            "qosClass": "Burstable",
        }
    else:
        status = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                      "lastTransitionTime": when, "reason": "Unschedulable",
                                                      "message": NODE_MESSAGE}],
                  "qosClass": "Burstable"}
    return {"metadata": metadata, "spec": spec, "status": status}


def cluster_pods(count: int, teams: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` pods of jobs of ``PODS_PER_JOB`` (a driver, bound, and executors, ``BOUND`` of them bound)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    job = 0
    while len(out) < count:
        app = f"etl-daily-{job:05d}-{rng.getrandbits(64):016x}{rng.getrandbits(64):016x}"
        driver_uid = _uid(rng)
        for index in range(min(PODS_PER_JOB, count - len(out))):
            out.append(spark_pod(rng, job, index, teams, app, driver_uid,
                                 bound=index == 0 or index <= BOUND * (PODS_PER_JOB - 1)))
        job += 1
    return out


# --- the stand-in API server, in a process of its own -----------------------------------------------------------


def serve(count: int, teams: int) -> None:
    """Serve ``count`` pods from the stand-in until stdin closes; prints ``<url> <list bytes>`` once serving."""
    from tests.agent.kube_pods import PodsApiServer  # here only: the measuring processes must not load the stand-in

    gc.disable()  # this process only builds and serves a fixed set of objects: no cycles to collect
    server = PodsApiServer()
    size = 0
    for obj in cluster_pods(count, teams):
        size += len(orjson.dumps(obj)) + 1
        server.put("pods", obj)
    server.restart()  # drop the creation history (a copy of every pod); lists and watches from now work as ever
    config = uvicorn.Config(server.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    while not runner.started:
        time.sleep(0.05)
    port = runner.servers[0].sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port} {size}", flush=True)
    sys.stdin.read()
    runner.should_exit = True
    thread.join(10)


# --- one measurement, in a process of its own -------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _whole_list(core: client.CoreV1Api, **kwargs: Any) -> Any:
    """The list as ``ClusterPods`` read it before: the whole body, decoded at once, every pod as sent."""
    response: Any = core.list_pod_for_all_namespaces(field_selector=UNFINISHED, resource_version="0",
                                                     _preload_content=False, _request_timeout=(10, 600))
    try:
        return orjson.loads(response.data)
    finally:
        response.release_conn()


def measure(mode: str, url: str, teams: int) -> dict[str, Any]:
    """List the pods the way ``mode`` says, read them into demand twice; the figures."""
    configuration = client.Configuration()
    configuration.host = url
    api = client.ApiClient(configuration)
    start_rss, start_cpu, started = _rss_mb(), time.process_time(), time.perf_counter()
    if mode == "followed":
        pods = ClusterPods(api, "bench", request_timeout_s=600.0)
        pods.start()
        if not pods.wait_first_list(1800):
            raise SystemExit(f"pods not listed: {pods.error}")
        snapshot = pods.snapshot
    else:
        informer = Informer(lambda **kwargs: _whole_list(client.CoreV1Api(api), **kwargs), "bench")
        informer.relist()
        snapshot = informer.snapshot
    list_s, list_cpu_s = time.perf_counter() - started, time.process_time() - start_cpu
    gc.collect()
    listed_rss = _rss_mb()
    reader = PodReader("k8s-a", Conventions.for_domain(DOMAIN))
    bindings = {f"team-{t}": TeamBinding(namespaces={"k8s-a": (f"team-{t}",)}) for t in range(teams)}
    started = time.perf_counter()
    first = reader.read(snapshot(), bindings)
    first_s, started = time.perf_counter() - started, time.perf_counter()
    again = reader.read(snapshot(), bindings)
    cycle_s = time.perf_counter() - started
    if again != first:
        raise SystemExit("an unchanged read differs from the first")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if mode == "followed":
        pods.close()
    return {"mode": mode, "pods": len(snapshot()), "list_s": round(list_s, 2), "list_cpu_s": round(list_cpu_s, 2),
            "start_rss_mb": round(start_rss), "listed_rss_mb": round(listed_rss), "peak_rss_mb": round(peak),
            "copy_mb": round(listed_rss - start_rss), "first_read_s": round(first_s, 2),
            "cycle_s": round(cycle_s, 3), "classes": len(first.classes),
            "demand": [[c.name, c.team, c.count, c.running, c.shape.cpu_milli, c.shape.memory_mib, c.is_am]
                       for c in first.classes]}


# --- the run ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--modes", default="followed,whole", help="comma-separated: followed, whole")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("followed", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.pods, args.teams)
        return
    if args.measure:
        print(orjson.dumps(measure(args.measure, args.url, args.teams)).decode())
        return
    modes = [mode for mode in args.modes.split(",") if mode]
    if not set(modes) <= {"followed", "whole"}:
        parser.error("--modes: followed and/or whole")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    me = [sys.executable, str(Path(__file__).resolve())]
    started = time.perf_counter()
    server = subprocess.Popen([*me, "--serve", "--pods", str(args.pods), "--teams", str(args.teams)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        url, size = server.stdout.readline().split()
        results: dict[str, Any] = {"pods": args.pods, "teams": args.teams, "list_mb": round(int(size) / 1e6, 1),
                                   "serve_setup_s": round(time.perf_counter() - started, 1),
                                   "load_before": os.getloadavg()[0]}
        for mode in modes:
            done = subprocess.run([*me, "--measure", mode, "--url", url, "--teams", str(args.teams)],
                                  capture_output=True, text=True, env=env, check=True)
            results[mode] = orjson.loads(done.stdout.splitlines()[-1])
        results["load_after"] = os.getloadavg()[0]
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)
    same = len({orjson.dumps(results[mode]["demand"]) for mode in modes}) == 1
    for mode in modes:
        results[mode].pop("demand")
    results["same_classes"] = same
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"{args.pods} pods ({results['list_mb']} MB listed), {args.teams} teams; load {results['load_before']:.2f}"
          f" -> {results['load_after']:.2f}; same classes in every mode: {same}")
    columns = ("list_s", "list_cpu_s", "peak_rss_mb", "copy_mb", "first_read_s", "cycle_s", "classes")
    print(f"{'mode':<10}" + "".join(f"{c:>14}" for c in columns))
    for mode in modes:
        print(f"{mode:<10}" + "".join(f"{results[mode][c]:>14}" for c in columns))


if __name__ == "__main__":
    main()
