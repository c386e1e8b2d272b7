"""The hop planner (pure): from the lock a platform was installed with to the lock of this affordml, the hops
that upstream supports, bottom to top: OpenStack releases, Kubernetes minors with their Kubespray tags, then the
charts of the gpu and ml phases. Each hop is one phase action ("upgrade") run over the phase registry.
Every rule comes from affordml/lifecycle/paths.yaml; a downgrade or an unsupported jump is refused in one line
that names the supported path."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from affordml.errors import AffordmlError
from affordml.lifecycle.rules import minor_of, version_key

PHASE_ORDER = ("openstack", "kubernetes", "gpu", "ml")


class UpgradeRefused(AffordmlError):
    exit_code = 4
    label = "upgrade"


@dataclass(frozen=True)
class Step:
    component: str
    from_version: str
    to_version: str
    how: str


@dataclass(frozen=True)
class Hop:
    phase: str  # the registry phase whose "upgrade" action runs it
    steps: tuple[Step, ...]
    lock: dict = field(default_factory=dict)  # what this hop's lock differs in: component -> fields

    def to_dict(self) -> dict:
        return {"phase": self.phase, "steps": [asdict(s) for s in self.steps], "lock": self.lock}


@dataclass(frozen=True)
class UpgradePlan:
    source: str
    target: str
    hops: tuple[Hop, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "from": self.source,
            "to": self.target,
            "hops": [h.to_dict() for h in self.hops],
            "notes": list(self.notes),
        }


def plan_upgrade(installed: dict, target: dict, rules: dict) -> UpgradePlan:
    """installed/target: lock summaries (affordml.lifecycle.rules.lock_summary)."""
    hops = [
        *openstack_hops(installed, target, rules["kolla_ansible"]),
        *kubernetes_hops(installed, target, rules["kubespray"]),
        *chart_hops(installed, target, rules["charts"]),
    ]
    return UpgradePlan(
        installed.get("name", "?"), target.get("name", "?"), tuple(hops), tuple(notes(installed, target, rules))
    )


def _refuse_downgrade(what: str, have: str, want: str) -> None:
    if version_key(want) < version_key(have):
        raise UpgradeRefused(
            f"{what} would go down from {have} to {want}: affordml never downgrades",
            "use the affordml release that installed this platform (its lock is in state.json), or a newer one",
        )


# ------------------------------------------------------------------ OpenStack


def openstack_hops(installed: dict, target: dict, rules: dict) -> list[Hop]:
    releases = rules["releases"]
    names = [r["openstack_release"] for r in releases]
    have, want = installed["openstack_release"], target["openstack_release"]
    for release in (have, want):
        if release not in names:
            raise UpgradeRefused(
                f"OpenStack {release} is not in affordml's upgrade rules (known: {', '.join(names)})",
                "upgrade by hand to one of those releases first (kolla-ansible's operating guide)",
            )
    start, end = names.index(have), names.index(want)
    _refuse_downgrade("OpenStack", have, want)
    if start == end:
        _refuse_downgrade("kolla-ansible", installed["kolla_ansible"], target["kolla_ansible"])
        if installed["kolla_ansible"] == target["kolla_ansible"]:
            return []
        return [_kolla_hop(releases[end], installed["kolla_ansible"], target["kolla_ansible"], have, want, rules)]
    hops, at, version = [], start, installed["kolla_ansible"]
    while at < end:
        step = kolla_next(releases, at, end)
        new = target["kolla_ansible"] if step == end else str(releases[step]["newest"])
        hops.append(_kolla_hop(releases[step], version, new, names[at], names[step], rules))
        at, version = step, new
    return hops


def kolla_next(releases: list[dict], at: int, end: int) -> int:
    """The next release: two ahead when both ends are SLURP releases (skip-level) and that is not past the end."""
    skip = at + 2
    if skip <= end and releases[at].get("slurp") and releases[skip].get("slurp"):
        return skip
    return at + 1


def _kolla_hop(release: dict, have: str, want: str, from_release: str, to_release: str, rules: dict) -> Hop:
    if str(version_key(want)[0]) != str(release["major"]):
        raise UpgradeRefused(
            f"kolla-ansible {want} does not deploy OpenStack {to_release} (that is kolla-ansible {release['major']}.x)",
            "the version lock is inconsistent: reinstall affordml",
        )
    kind = "skip-level (SLURP)" if _gap(from_release, to_release) > 1 else "release upgrade"
    if from_release == to_release:
        kind = "within the series"
    how = f"kolla-ansible {want}: {', '.join(rules['steps'])} ({kind} {from_release} -> {to_release})"
    lock = {
        "kolla_ansible": {
            "version": want,
            "openstack_release": to_release,
            "openstack_tag": f"{to_release}-ubuntu-noble",
            "ansible_core": release["ansible_core"],
        }
    }
    return Hop("openstack", (Step("kolla_ansible", have, want, how),), lock)


def _gap(from_release: str, to_release: str) -> int:
    """Releases between two OpenStack names (two per year: YYYY.1, YYYY.2)."""
    (y1, n1), (y2, n2) = version_key(from_release)[:2], version_key(to_release)[:2]
    return (y2 * 2 + n2) - (y1 * 2 + n1)


# ------------------------------------------------------------------ Kubernetes


def kubernetes_hops(installed: dict, target: dict, rules: dict) -> list[Hop]:
    tags = rules["tags"]
    names = [t["tag"] for t in tags]
    have_tag, want_tag = installed["kubespray"], target["kubespray"]
    have, want = installed["kubernetes"], target["kubernetes"]
    for tag in (have_tag, want_tag):
        if tag not in names:
            raise UpgradeRefused(
                f"Kubespray {tag} is not in affordml's upgrade rules (known: {', '.join(names)})",
                "upgrade the cluster by hand, one Kubespray tag at a time, to one of those tags first",
            )
    _refuse_downgrade("Kubespray", have_tag, want_tag)
    _refuse_downgrade("Kubernetes", have, want)
    if not supports(tags[names.index(want_tag)], want):
        raise UpgradeRefused(
            f"Kubespray {want_tag} cannot install Kubernetes {want}",
            "the version lock is inconsistent: reinstall affordml",
        )
    hops: list[Hop] = []
    kube, previous = have, tags[names.index(have_tag)]
    for tag in tag_path(tags, names.index(have_tag), names.index(want_tag)):
        kube = _catch_up(hops, previous, tag, kube, want)
        kube = _tag_hops(hops, tag, kube, want, final=tag["tag"] == want_tag, new_tag=tag["tag"] != have_tag)
        previous = tag
    if kube != want:
        raise UpgradeRefused(
            f"Kubespray {want_tag} cannot take Kubernetes {kube} to {want} one minor at a time",
            "the version lock is inconsistent: reinstall affordml",
        )
    return hops


def tag_path(tags: list[dict], start: int, end: int) -> list[dict]:
    """One tag per Kubespray minor after the installed one: that minor's newest patch tag (the target's own tag
    for the last minor). An empty path when the installed tag is the target."""
    if start == end:
        return [tags[end]]
    minors: dict[tuple, dict] = {}
    for tag in tags[start + 1 : end + 1]:
        minors[version_key(tag["tag"])[:2]] = tag
    minors[version_key(tags[end]["tag"])[:2]] = tags[end]
    return [minors[key] for key in sorted(minors)]


def _catch_up(hops: list[Hop], previous: dict, tag: dict, kube: str, want: str) -> str:
    """When the next tag no longer handles the cluster's minor, raise it with the tag already in use first,
    one minor per hop, never past the target's minor."""
    while not supports(tag, kube) and supports(previous, kube):
        major, minor = version_key(kube)[:2]
        up = f"{major}.{minor + 1}"
        nxt = previous["kube"].get(up)
        if nxt is None or version_key(up) > version_key(minor_of(want)):
            break
        nxt = min(nxt, want, key=version_key)
        hops.append(_kube_hop(previous, kube, nxt))
        kube = nxt
    return kube


def supports(tag: dict, kube: str) -> bool:
    newest = tag["kube"].get(minor_of(kube))
    return newest is not None and version_key(kube) <= version_key(newest)


def _tag_hops(hops: list[Hop], tag: dict, kube: str, want: str, final: bool, new_tag: bool) -> str:
    """Hops with this tag: on an intermediate tag one minor up (or its newest patch of the current minor); on
    the target's tag one minor per hop up to the target version. A new tag runs upgrade-cluster.yml at least
    once, even with Kubernetes unchanged (it also upgrades etcd, the container runtime and the network plugin).
    Returns the version reached."""
    if not supports(tag, kube):
        raise UpgradeRefused(
            f"Kubespray {tag['tag']} cannot upgrade a Kubernetes {kube} cluster (it handles "
            f"{', '.join(sorted(tag['kube'], key=version_key))})",
            "upgrade Kubernetes with the previous Kubespray tag first, one minor at a time",
        )
    moved = False
    while (nxt := _next_kube(tag, kube, want, final)) is not None:
        hops.append(_kube_hop(tag, kube, nxt))
        kube, moved = nxt, True
        if not final:
            break
    if new_tag and not moved:
        hops.append(_kube_hop(tag, kube, kube))
    return kube


def _next_kube(tag: dict, kube: str, want: str, final: bool) -> str | None:
    major, minor = version_key(kube)[:2]
    want_minor = version_key(want)[:2]
    if (major, minor) == want_minor:
        goal = want if final else min(want, tag["kube"][minor_of(kube)], key=version_key)
    else:
        up = f"{major}.{minor + 1}"
        goal = tag["kube"].get(up) or tag["kube"][minor_of(kube)]
        if up == minor_of(want):
            goal = want if final else min(goal, want, key=version_key)
    return goal if version_key(goal) > version_key(kube) else None


def _kube_hop(tag: dict, have: str, want: str) -> Hop:
    change = f"Kubernetes {have} -> {want}" if have != want else f"Kubernetes stays {have} (Kubespray's components)"
    how = f"Kubespray {tag['tag']} upgrade-cluster.yml, {change}"
    lock = {
        "kubespray": {"version": tag["tag"], "tag": tag["tag"], "commit": tag["commit"], "ansible": tag["ansible"]},
        "kubernetes": {"version": want, "kubernetes_minor": minor_of(want)},
        "artifact:kubespray": {"version": tag["tag"], "git_tree": tag["git_tree"]},
    }
    return Hop("kubernetes", (Step("kubernetes", have, want, how),), lock)


# ------------------------------------------------------------------ Charts


def chart_hops(installed: dict, target: dict, charts: list[dict]) -> list[Hop]:
    """One hop per phase (gpu, then ml) holding that phase's chart upgrades in dependency order."""
    by_phase: dict[str, list[Step]] = {}
    for chart in dependency_order(charts):
        name = chart["component"]
        have, want = installed.get(name) or "", target.get(name) or ""
        if not want or have == want:
            continue
        if not have:
            step = Step(name, "-", want, f"{name} {want}: new in this lock, installed by the {chart['phase']} phase")
        else:
            _refuse_downgrade(name, have, want)
            _check_major(chart, have, want)
            crds = f"; {chart['crds']}" if chart.get("crds") else ""
            step = Step(name, have, want, f"helm upgrade {name} {have} -> {want}{crds}")
        by_phase.setdefault(chart["phase"], []).append(step)
    return [Hop(phase, tuple(by_phase[phase])) for phase in PHASE_ORDER if phase in by_phase]


def _check_major(chart: dict, have: str, want: str) -> None:
    limit = chart.get("max_major_step")
    jump = version_key(want)[0] - version_key(have)[0]
    if limit is not None and jump > limit:
        via = f"{version_key(have)[0] + 1}.x"
        raise UpgradeRefused(
            f"{chart['component']} {have} -> {want} jumps {jump} majors; upstream supports {limit} per upgrade",
            f"upgrade {chart['component']} to {via} first with an affordml release whose lock has it",
        )


def dependency_order(charts: list[dict]) -> list[dict]:
    """Charts by phase order; inside a phase, each after the charts it names in `after` (stable otherwise)."""
    placed: list[dict] = []
    names: set[str] = set()
    pending = sorted(charts, key=lambda c: PHASE_ORDER.index(c["phase"]))
    while pending:
        ready = next((c for c in pending if set(c.get("after") or ()) <= names), None)
        if ready is None:
            raise UpgradeRefused(
                f"the chart order in the upgrade rules has a cycle among {', '.join(c['component'] for c in pending)}",
                "reinstall affordml",
            )
        placed.append(ready)
        names.add(ready["component"])
        pending.remove(ready)
    return placed


def notes(installed: dict, target: dict, rules: dict) -> list[str]:
    out = []
    if installed.get("helm") != target.get("helm"):
        out.append(f"helm client {installed.get('helm')} -> {target.get('helm')} (affordml downloads it; no hop)")
    if installed.get("guest_image") != target.get("guest_image"):
        out.append(
            f"guest image {installed.get('guest_image')} -> {target.get('guest_image')}: {rules['guest_image']['note']}"
        )
    else:
        out.append(f"guest image {target.get('guest_image')}: unchanged; running VMs keep theirs")
    return out
