"""The report page's Content-Security-Policy allows exactly Evidently's own scripts."""

from __future__ import annotations

from monitor_service.html_policy import report_policy, script_hash, static_hashes

DATA = "\n    var metric_" + "a" * 32 + ' = {"widgets": []};\n'
BUNDLE = "var bundle = 1;"
DRAW = (
    "\n    window.drawDashboard(metric_"
    + "a" * 32
    + ",\n        new Map(Object.entries(additional_graphs_metric_"
    + "a" * 32
    + ')),\n        "root_metric_'
    + "a" * 32
    + '"\n    );\n    '
)


def _page(*scripts: str) -> str:
    return "<html><head>" + "".join(f"<script>{s}</script>" for s in scripts) + "</head></html>"


def _allowed(policy: str) -> set[str]:
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    return set(script_src.split()[1:])


def test_policy_allows_the_data_the_known_scripts_and_the_drawing_call() -> None:
    static = static_hashes(_page(DATA.replace("a", "b"), "var global = globalThis", BUNDLE, DRAW))
    policy = report_policy(_page(DATA, "var global = globalThis", BUNDLE, DRAW), static)
    assert _allowed(policy) == {
        script_hash(DATA),
        script_hash("var global = globalThis"),
        script_hash(BUNDLE),
        script_hash(DRAW),
    }
    for directive in (
        "default-src 'none'",
        "connect-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in policy


def test_policy_leaves_out_a_script_smuggled_in_after_the_data() -> None:
    static = static_hashes(_page(DATA, BUNDLE, DRAW))
    attack = 'document.title = "pwned"'
    policy = report_policy(_page(DATA, attack, BUNDLE, DRAW), static)
    assert script_hash(attack) not in _allowed(policy)
    assert script_hash(BUNDLE) in _allowed(policy)


def test_policy_allows_nothing_that_is_not_shaped_like_evidentlys_page() -> None:
    fake_draw = "window.drawDashboard(evil)"
    policy = report_policy(_page("alert(1)", BUNDLE, fake_draw), frozenset())
    assert _allowed(policy) == {"'none'"}
