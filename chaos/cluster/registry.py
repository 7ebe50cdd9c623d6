"""REST semantics over the store: what create, update, patch, delete, scale and evict mean.

The HTTP layer only parses requests; everything a client can observe about an object's life
(generation bumps on spec changes, status-only subresources, optimistic concurrency, graceful
pod deletion with a deletionTimestamp, cascading deletes through ownerReferences, PDB-guarded
eviction) happens here, under the store's lock so that read-modify-write steps are atomic.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from chaos.cluster import defaults, disruption, meta, podstatus, resources
from chaos.cluster.errors import (
    ApiError,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    not_supported,
    success_status,
    too_large_resource_version,
)
from chaos.cluster.patches import apply_patch
from chaos.cluster.resources import Resource
from chaos.cluster.selectors import (
    field_value,
    parse_field_selector,
    parse_label_selector,
    selector_string,
)
from chaos.cluster.storage import Store, parse_rv
from sim.kube import pods as pod_rules
from sim.kube.timescale import TimeScale

# How long a NotOlderThan read waits for a revision not reached yet (upstream's cacher: 3 s).
NOT_OLDER_THAN_WAIT_S = 3.0
_IMMUTABLE_MD = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


class Registry:
    def __init__(self, store: Store, time_scale: TimeScale) -> None:
        self.store = store
        self.time_scale = time_scale
        self.log_reader: Callable[[dict, dict], str] | None = None  # set by the kubelets

    # --- helpers ---------------------------------------------------------------------------
    def _key_ns(self, res: Resource, namespace: str | None) -> str:
        return namespace or "" if res.namespaced else ""

    def _ensure_namespace(self, res: Resource, namespace: str) -> None:
        if not res.namespaced:
            return
        ns = self.store.get(resources.NAMESPACES, "", namespace)
        if ns is None:
            raise not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(403, f'unable to create new content in namespace {namespace} '
                                "because it is being terminated", reason="Forbidden")

    def _check_type(self, res: Resource, body: dict) -> None:
        if not isinstance(body, dict):
            raise bad_request(f"the request body must be a JSON object describing a {res.kind}")
        for field, want in (("apiVersion", res.api_version), ("kind", res.kind)):
            got = body.get(field)
            if got not in (None, "", want):
                raise bad_request(f"{field} {got!r} does not match the endpoint; "
                                  f"this path serves {res.api_version} {res.kind}")
        body["apiVersion"], body["kind"] = res.api_version, res.kind

    # --- reads -----------------------------------------------------------------------------
    def get(self, res: Resource, namespace: str | None, name: str) -> dict:
        return self.store.must_get(res, self._key_ns(res, namespace), name)

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: str | None = None,
             continue_token: str | None = None, resource_version: str | None = None,
             resource_version_match: str | None = None,
             send_initial_events: str | None = None) -> dict:
        """A List; with `limit`, one chunk of it and a `continue` token for the next, which
        reads the same snapshot (the first chunk's resourceVersion) as upstream does.
        `resourceVersion` (+ `resourceVersionMatch`) picks the revision as upstream: unset or
        "0" the latest, N with NotOlderThan (the default) at least N, waiting up to 3 s for it,
        and with Exact (also the default when `limit` is set) exactly N."""
        labels_ok = parse_label_selector(label_selector)
        fields_ok = parse_field_selector(field_selector)
        size = _parse_limit(limit)
        rv_text, match = resource_version or "", resource_version_match or ""
        _validate_list_options(rv_text, match, continue_token, send_initial_events)
        scope = namespace if res.namespaced and namespace else None
        if continue_token:
            if rv_text not in ("", "0"):
                raise bad_request("specifying resource version is not allowed when using "
                                  "continue")
            rv, start = _parse_continue(continue_token)
            objs = self._list_at(res, scope, rv, "The provided continue parameter is too old "
                                 "to display a consistent list result. You can start a new "
                                 "list without the continue parameter.")
            objs = [o for o in objs if _list_key(res, o) > start]
        elif rv_text in ("", "0"):
            objs, rv = self.store.list(res, scope)
        elif match == "Exact" or (not match and size):
            rv = parse_rv(rv_text)
            if rv > self.store.rv:
                raise too_large_resource_version(rv, self.store.rv)
            objs = self._list_at(res, scope, rv, "The resourceVersion for the provided list "
                                 "is too old.")
        else:  # NotOlderThan: the latest, once the store has reached it
            wanted = parse_rv(rv_text)
            if not self.store.wait(wanted - 1, NOT_OLDER_THAN_WAIT_S):
                raise too_large_resource_version(wanted, self.store.rv)
            objs, rv = self.store.list(res, scope)
        items = [o for o in objs if labels_ok(meta.labels_of(o)) and fields_ok(o)]
        list_md: dict = {"resourceVersion": str(rv)}
        if size and len(items) > size:
            rest = len(items) - size
            items = items[:size]
            list_md["continue"] = _continue_token(rv, _list_key(res, items[-1]))
            if not label_selector and not field_selector:  # upstream counts only then
                list_md["remainingItemCount"] = rest
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": list_md, "items": items}

    def _list_at(self, res: Resource, scope: str | None, rv: int, expired: str) -> list[dict]:
        try:
            return self.store.list_at(res, scope, rv)
        except ApiError as err:
            if err.code != 410:
                raise
            raise ApiError(410, expired, reason="Expired") from None

    # --- create ----------------------------------------------------------------------------
    def create(self, res: Resource, namespace: str | None, body: dict) -> dict:
        self._check_type(res, body)
        md = body.setdefault("metadata", {})
        if res.namespaced:
            if md.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + meta.random_suffix()
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
            md.pop(field, None)
        if res.kind in ("Deployment", "ReplicaSet", "HorizontalPodAutoscaler",
                        "PodDisruptionBudget", "Pod"):
            body.pop("status", None)
        md["generation"] = 1
        defaults.apply(res.kind, body, creating=True)
        with self.store.lock:
            self._ensure_namespace(res, namespace or "")
            return self.store.create(res, body)

    # --- update and patch ------------------------------------------------------------------
    def _write(self, res: Resource, old: dict, new: dict, subresource: str | None,
               expect_rv: str | None) -> dict:
        """Merge a client's full new version with the stored one and store it."""
        self._check_type(res, new)
        md = new.setdefault("metadata", {})
        name = old["metadata"]["name"]
        if md.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({md.get('name')}) does not match the "
                              f"name on the URL ({name})")
        if md.get("uid") not in (None, "", old["metadata"]["uid"]):
            raise conflict(res.plural, name, res.group)
        md["name"] = name
        if res.namespaced:
            md["namespace"] = old["metadata"]["namespace"]
        for field in _IMMUTABLE_MD:
            if field in old["metadata"]:
                md[field] = old["metadata"][field]
            else:
                md.pop(field, None)
        if subresource == "status":
            merged = dict(old)
            merged["metadata"] = dict(old["metadata"])
            if "labels" in md or "annotations" in md:
                pass  # status writes never change metadata
            merged["status"] = new.get("status", {})
            new = merged
        elif res.has_status:
            new["status"] = old.get("status", {})
        if subresource != "status":
            defaults.apply(res.kind, new, old_pod_spec=(old.get("spec") or {})
                           if res is resources.PODS else None)
            gen = old["metadata"].get("generation", 1)
            changed = any(new.get(k) != old.get(k) for k in ("spec", "data", "template"))
            new["metadata"]["generation"] = gen + 1 if changed else gen
        new = json.loads(json.dumps(new))  # detach from anything shared with `old`
        return self.store.replace(res, new, expect_rv=expect_rv)

    def update(self, res: Resource, namespace: str | None, name: str, body: dict,
               subresource: str | None = None) -> dict:
        with self.store.lock:
            old = self.get(res, namespace, name)
            expect = (body.get("metadata") or {}).get("resourceVersion") or None
            if expect and expect != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, name, res.group)
            return self._write(res, old, body, subresource, expect)

    def patch(self, res: Resource, namespace: str | None, name: str, content_type: str,
              patch, subresource: str | None = None) -> dict:
        with self.store.lock:
            old = self.get(res, namespace, name)
            new = apply_patch(content_type, meta.thaw(old), patch)
            if not isinstance(new, dict):
                raise ApiError(422, "the patch did not produce an object")
            expect = (new.get("metadata") or {}).get("resourceVersion")
            if expect and expect != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, name, res.group)
            return self._write(res, old, new, subresource, None)

    # --- scale subresource -----------------------------------------------------------------
    def get_scale(self, res: Resource, namespace: str, name: str) -> dict:
        return _scale_of(self.get(res, namespace, name))

    def set_scale(self, res: Resource, namespace: str, name: str, scale: dict) -> dict:
        with self.store.lock:
            obj = self.get(res, namespace, name)
            expect = (scale.get("metadata") or {}).get("resourceVersion")
            if expect and expect != obj["metadata"]["resourceVersion"]:
                raise conflict(res.plural, name, res.group)
            replicas = (scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise invalid("Scale", name, "spec.replicas", replicas,
                              "must be a non-negative integer")
            new = meta.thaw(obj)
            new["spec"]["replicas"] = replicas
            # The Scale of what was written, not a re-read: a dry run writes nothing.
            return _scale_of(self._write(res, obj, new, None, None))

    def patch_scale(self, res: Resource, namespace: str, name: str, content_type: str,
                    patch) -> dict:
        with self.store.lock:
            scale = apply_patch(content_type, self.get_scale(res, namespace, name), patch)
            return self.set_scale(res, namespace, name, scale)

    # --- delete ----------------------------------------------------------------------------
    def delete(self, res: Resource, namespace: str | None, name: str,
               options: dict | None = None) -> dict:
        options = options or {}
        with self.store.lock:
            obj = self.get(res, namespace, name)
            pre = options.get("preconditions") or {}
            for field in ("uid", "resourceVersion"):
                if pre.get(field) and pre[field] != obj["metadata"].get(field):
                    raise conflict(res.plural, name, res.group)
            if res is resources.PODS:
                return self._delete_pod(obj, options.get("gracePeriodSeconds"))
            if res is resources.NAMESPACES:
                self._delete_namespace(name)
            final = self.store.remove(res, self._key_ns(res, namespace), name)
            self._cascade(final, options.get("propagationPolicy") or "Background")
            return success_status(name, res.plural, res.group, final["metadata"]["uid"])

    def delete_collection(self, res: Resource, namespace: str | None, options: dict, *,
                          label_selector: str | None = None,
                          field_selector: str | None = None) -> dict:
        """deletecollection: delete every selected object with `options`, atomically (an
        object another delete removed meanwhile cannot turn it into a 404); the List of them."""
        if res.namespaced and not namespace:
            raise ApiError(405, f"DELETE is not allowed on {res.plural} of all namespaces: "
                                f"use /namespaces/NAMESPACE/{res.plural}")
        with self.store.lock:
            listed = self.list(res, namespace, label_selector=label_selector,
                               field_selector=field_selector)
            for item in listed["items"]:
                try:
                    self.delete(res, namespace, item["metadata"]["name"], options)
                except ApiError as err:
                    if err.code != 404:  # gone through an earlier item's cascade: fine
                        raise
            return listed

    def _delete_pod(self, pod: dict, requested) -> dict:
        """Graceful delete: stamp deletionTimestamp (= the SIGKILL deadline, time-scaled) and
        leave the rest to the kubelet; grace 0 removes the object at once."""
        md = pod["metadata"]
        now = self.store.clock()
        if podstatus.is_terminating(pod):
            if requested is None:
                return pod
            deadline = meta.parse_time(md["deletionTimestamp"])
            current = md.get("deletionGracePeriodSeconds", 0)
            started = deadline - self.time_scale.scaled(current)
            new_deadline = pod_rules.shorten_grace(
                deadline, now, self.time_scale.scaled(float(requested)), deleted_at=started,
                past_grace=self.time_scale.scaled(1.0))
            if new_deadline >= deadline:
                return pod
            over = pod_rules.grace_already_over(started, now, self.time_scale.scaled(float(requested)))
            grace = 0.0 if requested == 0 else 1.0 if over else max(1.0, float(requested))
        else:
            grace = pod_rules.effective_grace(
                requested, pod["spec"].get("terminationGracePeriodSeconds"),
                scheduled=bool(pod["spec"].get("nodeName")), phase=podstatus.phase(pod))
            new_deadline = now + self.time_scale.scaled(grace)
        if grace <= 0:
            return self.store.remove(resources.PODS, md["namespace"], md["name"])
        new = meta.thaw(pod)
        # Microseconds, not metav1.Time's whole seconds: a re-delete rebuilds the first
        # delete's time from this stamp, and time scaling would blow a 1 s truncation up to
        # `factor` cluster seconds. Clients (Go's RFC 3339 parser, the Python client) accept it.
        new["metadata"]["deletionTimestamp"] = meta.micro_timestamp(new_deadline)
        new["metadata"]["deletionGracePeriodSeconds"] = int(grace)
        new["metadata"]["generation"] = md.get("generation", 1) + 1
        return self.store.replace(resources.PODS, new)

    def finalize_pod(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet's last word: the containers are gone, remove the object for good."""
        with self.store.lock:
            pod = self.store.get(resources.PODS, namespace, name)
            if pod is not None and pod["metadata"]["uid"] == uid:
                self.store.remove(resources.PODS, namespace, name)

    def _cascade(self, owner: dict, policy: str) -> None:
        uid = owner["metadata"]["uid"]
        ns = owner["metadata"].get("namespace")
        for res in resources.RESOURCES:
            if not res.namespaced or not ns:
                continue
            objs, _ = self.store.list(res, ns)
            for obj in objs:
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if policy == "Orphan":
                    new = meta.thaw(obj)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    self.store.replace(res, new)
                else:
                    self.delete(res, ns, obj["metadata"]["name"],
                                {"propagationPolicy": policy})

    def _delete_namespace(self, name: str) -> None:
        if name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            raise ApiError(403, f'namespace "{name}" is a system namespace and cannot be deleted',
                           reason="Forbidden")
        for res in resources.RESOURCES:
            if res.namespaced:
                for obj in self.store.list(res, name)[0]:
                    if self.store.get(res, name, obj["metadata"]["name"]) is not None:
                        self.store.remove(res, name, obj["metadata"]["name"])

    # --- pod subresources ------------------------------------------------------------------
    def evict(self, namespace: str, name: str, body: dict) -> dict:
        """POST pods/NAME/eviction: delete the pod unless a PodDisruptionBudget forbids it."""
        with self.store.lock:
            pod = self.get(resources.PODS, namespace, name)
            if not podstatus.is_terminating(pod) and podstatus.phase(pod) == "Running":
                self._check_budgets(pod)
            options = (body or {}).get("deleteOptions") or {}
            self._delete_pod(pod, options.get("gracePeriodSeconds"))
            return success_status(name, "pods", "", pod["metadata"]["uid"])

    def _check_budgets(self, pod: dict) -> None:
        labels = meta.labels_of(pod)
        pdbs = [p for p in self.store.list(resources.PDBS, meta.ns_of(pod))[0]
                if disruption.compile_label_selector(
                    p["spec"].get("selector"), empty_matches_all=False)(labels)]
        if len(pdbs) > 1:
            raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the "
                                "eviction subresource does not support.")
        if not pdbs:
            return
        pdb = pdbs[0]
        budget = disruption.evaluate(self.store, pdb)
        healthy = podstatus.is_ready(pod)
        if (healthy and budget.disruptions_allowed >= 1) or (
                not healthy and budget.current_healthy >= budget.desired_healthy):
            return
        raise ApiError(
            429, "Cannot evict pod as it would violate the pod's disruption budget.",
            reason="TooManyRequests",
            details={"causes": [{
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {pdb['metadata']['name']} needs "
                           f"{budget.desired_healthy} healthy pods and has "
                           f"{budget.current_healthy} currently"}]})

    def bind(self, namespace: str, name: str, body: dict) -> dict:
        node = ((body or {}).get("target") or {}).get("name")
        if not node:
            raise invalid("Binding", name, "target.name", node, "Required value")
        with self.store.lock:
            pod = self.get(resources.PODS, namespace, name)
            if pod["spec"].get("nodeName"):
                raise ApiError(409, f"pod {name} is already assigned to node "
                                    f"\"{pod['spec']['nodeName']}\"")
            new = meta.thaw(pod)
            new["spec"]["nodeName"] = node
            self.store.replace(resources.PODS, new)
            return success_status(name, "pods", "")

    def read_log(self, namespace: str, name: str, query: dict) -> str:
        pod = self.get(resources.PODS, namespace, name)
        if self.log_reader is None:
            return ""
        return self.log_reader(pod, query)


def _scale_of(obj: dict) -> dict:
    """The autoscaling/v1 Scale of a deployment or replicaset."""
    md = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                        "creationTimestamp")},
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": selector_string(obj["spec"].get("selector"))},
    }


def _list_key(res: Resource, obj: dict) -> list[str]:
    """An object's place in list order: the store's (namespace, name) key."""
    return [meta.ns_of(obj) if res.namespaced else "", obj["metadata"]["name"]]


def _validate_list_options(rv: str, match: str, continue_token: str | None,
                           send_initial_events: str | None) -> None:
    """Upstream's ValidateListOptions for a list: 422 on ListOptions."""
    field = "resourceVersionMatch"
    if match:
        if not rv:
            raise forbidden("ListOptions", "", field,
                            "resourceVersionMatch is forbidden unless resourceVersion is provided")
        _no_match_with_continue(continue_token)
        if match not in ("Exact", "NotOlderThan"):
            raise not_supported("ListOptions", "", field, match, ["Exact", "NotOlderThan", ""])
        if match == "Exact" and rv == "0":
            raise forbidden("ListOptions", "", field,
                            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
    if send_initial_events is not None:
        raise forbidden("ListOptions", "", "sendInitialEvents",
                        "sendInitialEvents is forbidden for list")


def validate_watch_options(match: str | None, continue_token: str | None,
                           send_initial_events: str | None) -> None:
    """Upstream's ValidateListOptions for a watch, with the WatchList feature gate off (no
    streaming lists here): resourceVersionMatch only as NotOlderThan with sendInitialEvents,
    which is then refused; 422 on ListOptions."""
    field = "resourceVersionMatch"
    if send_initial_events is not None:
        if match != "NotOlderThan":
            raise forbidden("ListOptions", "", field,
                            "sendInitialEvents requires setting resourceVersionMatch to "
                            "NotOlderThan")
        raise forbidden("ListOptions", "", "sendInitialEvents", "sendInitialEvents is "
                        "forbidden for watch unless the WatchList feature gate is enabled")
    if match:
        raise forbidden("ListOptions", "", field,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents "
                        "is provided")
    _no_match_with_continue(continue_token)


def _no_match_with_continue(continue_token: str | None) -> None:
    if continue_token:
        raise forbidden("ListOptions", "", "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided")


def _parse_limit(limit: str | None) -> int:
    try:
        size = int(limit or 0)
    except ValueError:
        size = -1
    if size < 0:
        raise bad_request(f"limit {limit!r} is not a non-negative integer; send limit=N to list "
                          "at most N items, or no limit for all of them")
    return size


def _continue_token(rv: int, last: list[str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": last}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _parse_continue(token: str) -> tuple[int, list[str]]:
    try:
        parsed = json.loads(base64.urlsafe_b64decode(token.encode()))
        rv, start = parsed["rv"], parsed["start"]
        if parsed.get("v") != "meta.k8s.io/v1" or not isinstance(rv, int) \
                or not (isinstance(start, list) and len(start) == 2
                        and all(isinstance(s, str) for s in start)):
            raise ValueError(token)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise bad_request("continue key is not valid: send back the metadata.continue of the "
                          "previous chunk unchanged, or list again without continue") from None
    return rv, start


def pods_on_node(store: Store, node: str) -> list[dict]:
    return [p for p in store.list(resources.PODS)[0] if field_value(p, "spec.nodeName") == node]
