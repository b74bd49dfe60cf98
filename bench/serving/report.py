"""Ratios to the floor and the markdown tables of a serving run.

A run's ``measurements`` are flat records ``{target, payload, connections, ...LoadResult}``;
every record is compared with the floor's record for the same payload and connection count.
"""

from __future__ import annotations

from typing import Any

#: the issue's goals, checked in the table: throughput at these connection counts ...
THROUGHPUT_GOAL = 0.7
THROUGHPUT_GOAL_CONNECTIONS = (8, 64)
#: ... and p99 at one connection, in ms above the floor's
P99_GOAL_MS = 1.0


def best_of_rounds(measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target × payload × connections, the round with the most requests/s.

    On a shared machine other work only ever takes CPU away, so the fastest round is the one
    least disturbed; every round stays in the results file.
    """
    best: dict[tuple[str, str, int], dict[str, Any]] = {}
    for m in measurements:
        key = (m["target"], m["payload"], m["connections"])
        if key not in best or m["requests_per_s"] > best[key]["requests_per_s"]:
            best[key] = m
    return list(best.values())


def with_ratios(measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record plus ``ratio_to_floor`` (req/s) and ``p99_over_floor_ms``, where a floor exists."""
    floors = {(m["payload"], m["connections"], m.get("round")): m
              for m in measurements if m["target"] == "floor"}
    floors |= {(p, c, None): m for (p, c, _), m in list(floors.items())}
    out = []
    for m in measurements:
        floor = floors.get((m["payload"], m["connections"], m.get("round"))) or floors.get(
            (m["payload"], m["connections"], None))
        extra: dict[str, Any] = {}
        if floor and floor["requests_per_s"]:
            extra["ratio_to_floor"] = m["requests_per_s"] / floor["requests_per_s"]
            extra["p99_over_floor_ms"] = m["p99_ms"] - floor["p99_ms"]
        out.append({**m, **extra})
    return out


def goal_met(m: dict[str, Any]) -> str:
    """'yes'/'no' against the issue's goal for this connection count, '' where none applies."""
    if m["target"] == "floor" or "ratio_to_floor" not in m:
        return ""
    if m["connections"] in THROUGHPUT_GOAL_CONNECTIONS:
        return "yes" if m["ratio_to_floor"] >= THROUGHPUT_GOAL else "no"
    if m["connections"] == 1:
        return "yes" if m["p99_over_floor_ms"] <= P99_GOAL_MS else "no"
    return ""


def markdown(measurements: list[dict[str, Any]], payload: str) -> str:
    """One table for ``payload``: target × connections."""
    lines = [
        f"**{payload} CSV**",
        "",
        "| target | conns | req/s | p50 ms | p99 ms | server CPU ms/req | × floor req/s "
        "| p99 − floor ms | goal | load 1m |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for m in measurements:
        if m["payload"] != payload:
            continue
        ratio = f"{m['ratio_to_floor']:.2f}" if "ratio_to_floor" in m else ""
        delta = f"{m['p99_over_floor_ms']:+.2f}" if "p99_over_floor_ms" in m else ""
        errors = sum(m["errors"].values())
        name = m["target"] + (f" ({errors} errors)" if errors else "")
        lines.append(
            f"| {name} | {m['connections']} | {m['requests_per_s']:,.0f} | {m['p50_ms']:.2f} "
            f"| {m['p99_ms']:.2f} | {m['cpu_ms_per_request']:.2f} | {ratio} | {delta} "
            f"| {goal_met(m)} | {m['loadavg_1m']:.1f} |"
        )
    return "\n".join(lines)


def failures_markdown(failures: dict[str, str]) -> str:
    """Targets that could not be measured, and why (first line of the error)."""
    if not failures:
        return ""
    rows = [f"- **{name}**: {reason.strip().splitlines()[0] if reason.strip() else 'failed'}"
            for name, reason in failures.items()]
    return "Not measured:\n\n" + "\n".join(rows)
