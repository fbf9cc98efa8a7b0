"""The drill's verdict: compare what the sender was told, what the database holds and what
the receivers got, and write it up (printed, and var/drill/report.md).

Checks that FAIL the drill (exit 1): an acked webhook not stored exactly once (under the
id its answer named) or not delivered to every destination; a duplicate delivery with no
crash, shutdown or receiver timeout to explain it; a receiver request that matches no
stored delivery; an ingest answer that is a 5xx other than 503 or a 4xx to a valid
webhook; a Hookway process that exited on its own, or a dispatcher that stopped
delivering while its process lived (alone, either would deliver nothing more); a fault
the drill could not inject; an answer later than HOOKWAY_DB_TIMEOUT + 1.25 s; a canary
not acked at once after the connection storm; an attempt left in flight or one that
outlived its destination's timeout.

The one check that only WARNs (printed prominently, exit code unchanged): a drill too
starved of CPU to time answers well.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drill import causes
from drill.config import DESTINATIONS, DrillConfig
from drill.database import AttemptRow, DeliveryRow, Stored
from drill.load import NO_ANSWER, Answer, Sender, Webhook
from drill.processes import Life
from drill.receivers import Hit
from drill.timeline import Timeline

PASS, FAIL, WARN = "PASS", "FAIL", "WARN"
EXAMPLES = 8


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # PASS, FAIL or WARN
    detail: str


@dataclass
class RunData:
    config: DrillConfig
    database: str
    commit: str
    timeline: Timeline
    sender: Sender
    hits: list[Hit]
    stored: Stored
    lives: list[Life]
    texts: causes.HookwayTexts
    problems: list[str]  # faults or steps the drill could not carry out
    drained: str  # how the drain ended
    loop_lag_max: float  # seconds: the drill's own event loop, worst delay seen
    started_at: str
    canaries: list[int] = field(default_factory=list)  # seqs sent after the idle storm
    wall_seconds: float = 0.0


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (title, lines)
    console: set[str] = field(default_factory=set)  # section titles also printed
    header: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.result != FAIL for c in self.checks)

    def check(self, name: str, ok: bool, detail: str, *, warn_only: bool = False) -> None:
        result = PASS if ok else (WARN if warn_only else FAIL)
        self.checks.append(Check(name, result, detail))

    def section(self, title: str, lines: list[str], *, console: bool = False) -> None:
        self.sections.append((title, lines))
        if console:
            self.console.add(title)

    def markdown(self, *, full: bool = True) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"# Hookway fault drill: {verdict}", "", *self.header, ""]
        lines += ["## Checks", ""]
        lines += table(
            ["check", "result", "detail"],
            [
                [c.name, c.result if c.result == PASS else f"**{c.result}**", c.detail]
                for c in self.checks
            ],
        )
        for title, body in self.sections:
            if full or title in self.console:
                lines += ["", f"## {title}", "", *body]
        return "\n".join(lines) + "\n"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            value = f"{value:,.1f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0-100); nan when empty."""
    items = sorted(values)
    if not items:
        return float("nan")
    rank = min(len(items) - 1, max(0, round(p / 100 * len(items) + 0.5) - 1))
    return items[rank]


def clusters(times: Iterable[float], gap: float = 5.0) -> str:
    """'t=27.1-33.9s, t=61.0s': runs of times no more than ``gap`` apart."""
    spans: list[list[float]] = []
    for t in sorted(times):
        if spans and t - spans[-1][1] <= gap:
            spans[-1][1] = t
        else:
            spans.append([t, t])
    return ", ".join(
        f"t={a:.1f}s" if b - a < 0.05 else f"t={a:.1f}-{b:.1f}s" for a, b in spans[:6]
    ) + (" ..." if len(spans) > 6 else "")


# --------------------------------------------------------------------------- the analysis


class Analysis:
    def __init__(self, data: RunData) -> None:
        self.data = data
        self.config = data.config
        self.report = Report()
        self.hooks = data.sender.webhooks
        self.by_key: dict[str, Webhook] = {h.key: h for h in self.hooks.values()}
        self.acked = {seq for seq, h in self.hooks.items() if h.acked}
        stored = data.stored
        self.events_by_key: dict[str | None, list[str]] = collections.defaultdict(list)
        self.event_seq: dict[str, int | None] = {}
        for event in stored.events:
            self.events_by_key[event.key].append(event.id)
            hook = self.by_key.get(event.key or "")
            self.event_seq[event.id] = hook.seq if hook else None
        self.deliveries: dict[str, DeliveryRow] = {d.id: d for d in stored.deliveries}
        self.attempts: dict[tuple[str, int], AttemptRow] = {
            (a.delivery_id, a.number): a for a in stored.attempts
        }
        self.attempts_of: dict[str, list[AttemptRow]] = collections.defaultdict(list)
        for a in sorted(stored.attempts, key=lambda a: a.number):
            self.attempts_of[a.delivery_id].append(a)
        self.role_of = {life.pid: life for life in data.lives}
        # When each killed process died, as wall-clock time (comparable with started_at).
        self.killed_at = {
            life.pid: data.timeline.wall0 + data.timeline.at_monotonic(life.ended)
            for life in data.lives
            if life.killed and life.ended is not None
        }

    def run(self) -> Report:
        r = self.report
        d = self.data
        c = self.config
        r.header = [
            f"- run: {d.started_at}, {d.database}, Hookway commit {d.commit}",
            f"- load: {c.duration:g} s at {c.rate:g} webhooks/s; HOOKWAY_DB_TIMEOUT={c.db_timeout:g}, "
            f"HOOKWAY_LEASE_SECONDS={c.lease_seconds:g}, HOOKWAY_RETRY_SCHEDULE={c.retry_schedule}, "
            f"max_attempts={c.max_attempts}",
            f"- faults skipped: {', '.join(sorted(c.skip)) or 'none'}; drain: {d.drained}",
            f"- wall clock: {d.wall_seconds:.0f} s (setup, load, drain, stop and report)",
        ]
        self.ingest()
        self.storage()
        self.delivered()
        self.duplicates()
        self.attempt_checks()
        self.processes()
        self.drill_checks()
        self.timeline_sections()
        return r

    # -- what the sender was told --------------------------------------------------

    def ingest(self) -> None:
        answers = self.data.sender.answers
        c = self.config
        kinds = collections.Counter(
            str(a.status) if a.status is not None else a.error for a in answers
        )
        latencies = [a.latency for a in answers]
        slow = [a for a in answers if a.latency > c.slow_answer]
        no_answer = [a for a in answers if a.error == NO_ANSWER]
        bad_5xx = [
            a for a in answers if a.status is not None and a.status >= 500 and a.status != 503
        ]
        refused = [
            a
            for a in answers
            if a.status is not None and a.status < 500 and not 200 <= a.status < 300
        ]
        gave_up = collections.Counter(h.gave_up for h in self.hooks.values() if not h.acked)
        sent = len(self.hooks)
        rows: list[list[Any]] = [
            ["webhooks sent (unique)", sent],
            [
                "acked (2xx)",
                f"{len(self.acked):,} ({sum(1 for h in self.hooks.values() if h.ack_status == 200):,} of them as a 200 duplicate)",
            ],
            ["never acked", ", ".join(f"{n:,} {why}" for why, n in gave_up.items()) or "0"],
            ["requests (with retries)", len(answers)],
            ["answers", ", ".join(f"{k}: {n:,}" for k, n in sorted(kinds.items()))],
            [
                "latency p50 / p99 / max",
                f"{percentile(latencies, 50) * 1000:,.0f} ms / {percentile(latencies, 99) * 1000:,.0f} ms / "
                f"{max(latencies, default=0):,.2f} s",
            ],
            [
                f"answers later than {c.slow_answer:g} s",
                f"{len(slow):,} {clusters(a.sent for a in slow)}".strip(),
            ],
            [f"no answer within {c.sender_timeout:g} s", len(no_answer)],
        ]
        self.report.section("Ingest: what the sender was told", table(["", ""], rows), console=True)
        self.report.check(
            "ingest: no 5xx but 503",
            not bad_5xx,
            f"{len(bad_5xx):,} answers: "
            + ", ".join(
                f"{s}: {n}" for s, n in collections.Counter(a.status for a in bad_5xx).items()
            )
            if bad_5xx
            else f"{kinds.get('503', 0):,} answers were 503 (retried by the sender)",
        )
        self.report.check(
            "ingest: no valid webhook refused (4xx)",
            not refused,
            ", ".join(
                f"HTTP {s}: {n}" for s, n in collections.Counter(a.status for a in refused).items()
            )
            or "none",
        )
        first: dict[int, Answer] = {}
        for a in answers:
            first.setdefault(a.seq, a)
        if self.data.canaries:
            refused_canaries = [
                answer
                for seq in self.data.canaries
                if (answer := first.get(seq)) is not None
                and (answer.status is None or not 200 <= answer.status < 300)
            ]
            self.report.check(
                "ingest: canaries acked at once (the database was healthy again)",
                not refused_canaries,
                f"{len(refused_canaries)} of {len(self.data.canaries)} first got "
                + ", ".join(
                    f"{n} x {k}"
                    for k, n in collections.Counter(
                        str(a.status) if a.status else a.error for a in refused_canaries
                    ).items()
                )
                + " (a sender that does not retry loses them)"
                if refused_canaries
                else f"{len(self.data.canaries)} of {len(self.data.canaries)}",
            )
        self.report.check(
            f"ingest: every answer within HOOKWAY_DB_TIMEOUT + 1.25 s ({c.slow_answer:g} s)",
            not slow,
            (
                f"{len(slow):,} later (max {max(a.latency for a in slow):.1f} s; "
                f"{len(no_answer):,} with no answer within {c.sender_timeout:g} s) at {clusters(a.sent for a in slow)}"
            )
            if slow
            else f"max {max(latencies, default=0):.2f} s",
        )

    # -- what the database holds ------------------------------------------------------

    def storage(self) -> None:
        stored = self.data.stored
        lost, doubled, wrong_id = [], [], []
        for seq in sorted(self.acked):
            hook = self.hooks[seq]
            ids = self.events_by_key.get(hook.key, [])
            if not ids:
                lost.append(seq)
            elif len(ids) > 1:
                doubled.append(seq)
            elif hook.event_id is not None and hook.event_id != ids[0]:
                wrong_id.append(seq)
        unacked_stored = [
            h.seq for h in self.hooks.values() if not h.acked and self.events_by_key.get(h.key)
        ]
        foreign = sum(len(v) for k, v in self.events_by_key.items() if (k or "") not in self.by_key)
        rows: list[list[Any]] = [
            ["event rows", len(stored.events)],
            ["acked webhooks with exactly one row", len(self.acked) - len(lost) - len(doubled)],
            ["acked but not stored", f"{len(lost):,} {_seqs(lost)}".strip()],
            ["acked, stored more than once", f"{len(doubled):,} {_seqs(doubled)}".strip()],
            ["ack named another event id", f"{len(wrong_id):,} {_seqs(wrong_id)}".strip()],
            [
                "stored but never acked (fine: the sender gave up, or the ack was lost)",
                len(unacked_stored),
            ],
            ["rows no webhook of this run explains", foreign],
        ]
        self.report.section("Stored: event rows against acks", table(["", ""], rows))
        bad = len(lost) + len(doubled) + len(wrong_id) + foreign
        self.report.check(
            "every acked webhook stored exactly once",
            bad == 0,
            f"{len(lost)} lost, {len(doubled)} stored twice, {len(wrong_id)} under another id, "
            f"{foreign} unexplained rows"
            if bad
            else f"{len(self.acked):,} acked, {len(stored.events):,} rows ({len(unacked_stored)} never acked)",
        )

    # -- what the receivers got -------------------------------------------------------

    def _hit_matches(self, hit: Hit) -> bool:
        row = self.deliveries.get(hit.webhook_id)
        return (
            row is not None
            and row.destination == hit.destination
            and hit.seq is not None
            and self.event_seq.get(row.event_id) == hit.seq
        )

    def delivered(self) -> None:
        accepted: dict[str, set[int]] = {name: set() for name in DESTINATIONS}
        strays = [h for h in self.data.hits if not self._hit_matches(h)]
        for hit in self.data.hits:
            if hit.accepted and hit.seq is not None:
                accepted[hit.destination].add(hit.seq)
        states: dict[str, collections.Counter[str]] = {
            n: collections.Counter() for n in DESTINATIONS
        }
        for row in self.deliveries.values():
            states[row.destination][row.state] += 1
        rows = []
        missing_all: list[tuple[str, int]] = []
        for name in DESTINATIONS:
            missing = sorted(self.acked - accepted[name])
            missing_all += [(name, seq) for seq in missing]
            hits = [h for h in self.data.hits if h.destination == name]
            rows.append(
                [
                    name,
                    len(self.acked),
                    len(self.acked & accepted[name]),
                    len(missing),
                    " / ".join(
                        f"{states[name].get(s, 0):,}" for s in ("succeeded", "pending", "dead")
                    ),
                    len(hits),
                    ", ".join(
                        f"{k}: {n:,}"
                        for k, n in collections.Counter(h.answer for h in hits).items()
                    ),
                ]
            )
        self.report.section(
            "Delivered: acked webhooks at each destination",
            table(
                [
                    "destination",
                    "acked",
                    "delivered",
                    "missing",
                    "rows succeeded / pending / dead",
                    "requests",
                    "answers",
                ],
                rows,
            ),
            console=True,
        )
        if missing_all:
            lines = table(
                ["destination", "seq", "delivery row", "attempts", "last error"],
                [self._missing_row(name, seq) for name, seq in missing_all[:EXAMPLES]],
            )
            self.report.section(f"Missing deliveries (first {EXAMPLES})", lines, console=True)
        per = collections.Counter(name for name, _ in missing_all)
        self.report.check(
            "every acked webhook delivered to every destination",
            not missing_all,
            ", ".join(f"{name}: {per[name]:,} missing" for name in DESTINATIONS if per[name])
            or f"{len(self.acked):,} x {len(DESTINATIONS)} destinations",
        )
        self.report.check(
            "every receiver request matches a stored delivery of that destination",
            not strays,
            f"{len(strays):,} do not (first: {strays[0].destination} webhook-id "
            f"{strays[0].webhook_id!r} seq {strays[0].seq})"
            if strays
            else f"{len(self.data.hits):,} requests",
        )

    def _missing_row(self, destination: str, seq: int) -> list[Any]:
        ids = self.events_by_key.get(self.hooks[seq].key, [])
        rows = [
            d
            for d in self.deliveries.values()
            if d.event_id in ids and d.destination == destination
        ]
        if not rows:
            return [destination, seq, "no delivery row", "", ""]
        row = rows[0]
        return [destination, seq, f"{row.id} {row.state}", row.attempts, row.last_error[:80]]

    # -- duplicates -------------------------------------------------------------------

    def duplicates(self) -> None:
        by_cause: dict[str, collections.Counter[str]] = {
            n: collections.Counter() for n in DESTINATIONS
        }
        unexplained: list[tuple[str, str, str]] = []  # destination, webhook-id, detail
        copies: dict[tuple[str, str], list[Hit]] = collections.defaultdict(list)
        seq_ids: dict[tuple[str, int], set[str]] = collections.defaultdict(set)
        for hit in self.data.hits:
            if hit.accepted:
                copies[(hit.destination, hit.webhook_id)].append(hit)
                if hit.seq is not None:
                    seq_ids[(hit.destination, hit.seq)].add(hit.webhook_id)
        duplicated = 0
        for (name, webhook_id), hits in copies.items():
            if len(hits) < 2:
                continue
            duplicated += 1
            hits.sort(key=lambda h: h.at)
            numbers = [h.attempt for h in hits]
            for hit, following in itertools.pairwise(hits):
                if numbers.count(hit.attempt) > 1:
                    cause, detail = causes.UNEXPLAINED, f"attempt {hit.attempt} arrived twice"
                else:
                    row = self.attempts.get((webhook_id, hit.attempt or 0))
                    resent = self.attempts.get((webhook_id, following.attempt or 0))
                    cause, detail = causes.classify_repeat(
                        row, resent.started_at if resent else None, self.data.texts, self.killed_at
                    )
                by_cause[name][cause] += 1
                if cause == causes.UNEXPLAINED:
                    unexplained.append((name, webhook_id, detail))
        for (name, seq), ids in seq_ids.items():
            if len(ids) > 1:
                by_cause[name][causes.UNEXPLAINED] += len(ids) - 1
                unexplained.append(
                    (name, ", ".join(sorted(ids)), f"seq {seq} under {len(ids)} webhook-ids")
                )
        extra = {n: sum(by_cause[n].values()) for n in DESTINATIONS}
        rows = [
            [name, extra[name]] + [by_cause[name].get(cause, 0) for cause in causes.CAUSES]
            for name in DESTINATIONS
        ]
        self.report.section(
            "Duplicates: extra accepted copies, by cause",
            table(["destination", "extra copies", *causes.CAUSES], rows),
            console=True,
        )
        if unexplained:
            lines = table(
                [
                    "destination",
                    "webhook-id",
                    "why unexplained",
                    "its attempts (number worker outcome duration error)",
                ],
                [[n, w, why, self._history(w)] for n, w, why in unexplained[:EXAMPLES]],
            )
            self.report.section(f"Unexplained duplicates (first {EXAMPLES})", lines, console=True)
        total_unexplained = sum(by_cause[n][causes.UNEXPLAINED] for n in DESTINATIONS)
        explained = {
            cause: sum(by_cause[n][cause] for n in DESTINATIONS)
            for cause in causes.CAUSES
            if cause != causes.UNEXPLAINED
        }
        self.report.check(
            "every duplicate explained (crash, shutdown, receiver timeout, connection error)",
            total_unexplained == 0,
            "; ".join(
                ([f"{total_unexplained:,} unexplained"] if total_unexplained else [])
                + [f"{n:,} {cause}" for cause, n in explained.items() if n]
            )
            or "no duplicates",
        )

    def _history(self, webhook_id: str) -> str:
        parts = []
        for a in self.attempts_of.get(webhook_id, [])[:6]:
            pid = causes.worker_pid(a.worker)
            life = self.role_of.get(pid or -1)
            who = f"{life.role}:{pid}" if life else f"pid {pid}"
            took = f"{a.duration_ms / 1000:.1f}s" if a.duration_ms is not None else "-"
            parts.append(f"#{a.number} {who} {a.outcome} {took} {a.error[:50]!r}".rstrip())
        return "; ".join(parts)

    # -- the attempts table -----------------------------------------------------------

    def attempt_checks(self) -> None:
        stored = self.data.stored
        in_flight = [a for a in stored.attempts if a.outcome == "in_flight"]
        timeouts = stored.timeouts
        outlived = [
            a
            for a in stored.attempts
            if a.duration_ms is not None
            and (row := self.deliveries.get(a.delivery_id)) is not None
            and a.duration_ms / 1000 > timeouts.get(row.destination, 0) + 1
        ]
        self.report.check(
            "no attempt left in flight",
            not in_flight,
            f"{len(in_flight):,} in flight (workers: "
            + ", ".join(sorted({self._who(a.worker) for a in in_flight})[:4])
            + ")"
            if in_flight
            else f"{len(stored.attempts):,} attempts recorded",
        )
        kinds: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        for a in stored.attempts:
            # Errors differ by details (addresses, ids): group on their first words.
            kinds[(a.outcome, " ".join(a.error.split()[:6]))].append((a.duration_ms or 0) / 1000)
        self.report.section(
            "Attempts by outcome and error (how Hookway recorded them)",
            table(
                ["outcome", "error (first words)", "attempts", "median s", "max s"],
                [
                    [o, e or "-", len(d), f"{percentile(d, 50):.3f}", f"{max(d):.1f}"]
                    for (o, e), d in sorted(kinds.items(), key=lambda kv: -len(kv[1]))
                ],
            ),
        )
        per_dest = collections.Counter(self.deliveries[a.delivery_id].destination for a in outlived)
        self.report.check(
            "no attempt outlived its destination's timeout (+1 s)",
            not outlived,
            f"{len(outlived):,} did ("
            + ", ".join(f"{n}: {k:,}" for n, k in per_dest.items())
            + f"; longest {max(a.duration_ms or 0 for a in outlived) / 1000:.1f} s)"
            if outlived
            else "none",
        )

    def _who(self, worker: str) -> str:
        pid = causes.worker_pid(worker)
        life = self.role_of.get(pid or -1)
        return f"{life.role}:{pid}" if life else worker

    # -- processes --------------------------------------------------------------------

    def processes(self) -> None:
        d = self.data
        per_pid: dict[int | None, list[float]] = collections.defaultdict(list)
        for a in d.stored.attempts:
            per_pid[causes.worker_pid(a.worker)].append(d.timeline.at_wall(a.started_at))
        rows = []
        silent = []
        # A dispatcher alive from the middle of the load to its end must have made
        # attempts in the load's last 10 s: the load keeps every dispatcher busy. One that
        # did not has stopped inside a living process (alone, it would deliver nothing).
        window = (self.config.duration / 2, self.config.duration - 10)
        for life in d.lives:
            times = per_pid.get(life.pid, [])
            ready, ended = self._t(life.ready), self._t(life.ended)
            rows.append(
                [
                    life.role,
                    str(life.pid),
                    f"{self._t(life.started) or 0.0:.1f}",
                    f"{ready:.1f}" if ready is not None else "-",
                    f"{ended:.1f}" if ended is not None else "-",
                    life.how or "running",
                    len(times),
                    f"{max(times):.1f}" if times else "-",
                ]
            )
            lived_through = (
                ready is not None
                and ready <= window[0]
                and (ended is None or ended >= self.config.duration)
            )
            if lived_through and not any(t >= window[1] for t in times):
                last = f"{max(times):.1f}s" if times else "never"
                silent.append(f"{life.role} pid {life.pid} (last attempt at t={last})")
        self.report.section(
            "Processes (times in seconds since the load started)",
            table(
                ["role", "pid", "started", "ready", "ended", "how", "attempts", "last attempt"],
                rows,
            ),
            console=True,
        )
        unexpected = [life for life in d.lives if life.unexpected]
        self.report.check(
            "no Hookway process exited on its own",
            not unexpected,
            ", ".join(
                f"{x.role} pid {x.pid} at t={self._t(x.ended) or 0.0:.1f}s: {x.how}"
                for x in unexpected
            )
            or f"{len(d.lives)} process lives",
        )
        self.report.check(
            "every dispatcher kept delivering while its process lived",
            not silent,
            "stopped: " + "; ".join(silent)
            if silent
            else "each made attempts in the load's last 10 s",
        )

    def _t(self, monotonic: float | None) -> float | None:
        """Timeline seconds of a Life's time (None if it has none)."""
        if monotonic is None:
            return None
        return self.data.timeline.at_monotonic(monotonic)

    def drill_checks(self) -> None:
        d = self.data
        self.report.check(
            "the drill injected every fault",
            not d.problems,
            "; ".join(d.problems) or "yes",
        )
        self.report.check(
            "the drill's own event loop kept time (lag < 0.5 s)",
            d.loop_lag_max < 0.5,
            f"max lag {d.loop_lag_max * 1000:.0f} ms",
            warn_only=True,
        )

    # -- timelines --------------------------------------------------------------------

    def timeline_sections(self) -> None:
        d = self.data
        marks = [[f"{m.at:.1f}", m.what] for m in d.timeline.marks]
        self.report.section("Timeline", table(["t (s)", "what"], marks))
        step = 10.0
        end = max([h.at for h in d.hits] + [a.sent + a.latency for a in d.sender.answers] + [0.0])
        buckets = int(end // step) + 1
        rows = []
        for i in range(buckets):
            lo, hi = i * step, (i + 1) * step

            def inside(t: float, lo: float = lo, hi: float = hi) -> bool:
                return lo <= t < hi

            answers = [a for a in d.sender.answers if inside(a.sent + a.latency)]
            kinds = collections.Counter(
                "2xx"
                if a.status is not None and 200 <= a.status < 300
                else (str(a.status) if a.status else a.error)
                for a in answers
            )
            other = sum(n for k, n in kinds.items() if k not in ("2xx", "503"))
            accepted = collections.Counter(
                h.destination for h in d.hits if h.accepted and inside(h.at)
            )
            faults = "; ".join(
                m.what.split(" (")[0] for m in d.timeline.marks if m.fault and inside(m.at)
            )
            rows.append(
                [
                    f"{lo:.0f}-{hi:.0f}",
                    sum(1 for h in self.hooks.values() if inside(h.created)),
                    kinds.get("2xx", 0),
                    kinds.get("503", 0),
                    other,
                    sum(1 for a in answers if a.latency > self.config.slow_answer),
                    *[accepted.get(n, 0) for n in DESTINATIONS],
                    faults,
                ]
            )
        self.report.section(
            "Every 10 s (answers by when they came; receivers' accepted requests)",
            table(
                ["t (s)", "new", "2xx", "503", "errors", "slow", *DESTINATIONS, "faults started"],
                rows,
            ),
        )


def _seqs(seqs: Sequence[int]) -> str:
    if not seqs:
        return ""
    shown = ", ".join(str(s) for s in seqs[:EXAMPLES])
    return f"(seq {shown}{', ...' if len(seqs) > EXAMPLES else ''})"


def analyse(data: RunData) -> Report:
    """Judge the run: every check, and the sections of the report."""
    return Analysis(data).run()
