"""axe-core on every page a browser test visits, at desktop width and at a 390 px phone width.

``Audit(context)`` hooks a Playwright browser context. axe-core (from ``node_modules``, installed
by ``npm ci``) is injected into every document; it audits each page once loaded and again after
every HTMX swap, and reports to Python. When the test ends, ``finish`` visits every distinct page
the test saw once more, audits it at the desktop width and at a phone's 390 px (where it also
measures the page's width: no page-wide horizontal scroll), and saves a screenshot of each. The
test then fails on any serious or critical violation; every finding (all impacts) is written to a
JSON report beside the screenshots, whose folder the test prints.

Why revisit rather than audit just before each navigation: a Playwright route handler could hold
the navigation, but the sync API cannot evaluate in the page from inside one (it hangs), and a
quick click-through outruns the in-page audit. Revisiting at the end covers every page for sure.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE_PATH = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(os.environ.get("AUTOSEQ_SHOTS", "/tmp/autoseq-shots"))

# Runs axe on the whole document and keeps what a report needs.
RUN_AXE = """async () => {
  window.__axeOff = true;  // the live audit stands down; wait for one that is under way
  try { await window.__axeLive; } catch (e) { /* its own business */ }
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ')),
  }));
}"""
# In every top-level document: audit once loaded and after each HTMX swap (debounced).
LIVE_AXE = """(() => {
  if (window.top !== window) return;
  let timer = null, busy = false, again = false;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (busy) { again = true; } else { window.__axeLive = live(); }
    }, 120);
  };
  const live = async () => {
      if (window.__axeOff) return;
      busy = true;
      try {
        const result = await axe.run(document, {resultTypes: ['violations']});
        window.__axeReport(location.href, result.violations.map(v => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map(n => n.target.join(' ')),
        })));
      } catch (e) { /* the page went away mid-run: finish() revisits it */ }
      busy = false;
      if (again) { again = false; run(); }
  };
  addEventListener('load', run);
  document.addEventListener('htmx:afterSettle', run);
})();"""
WIDTH = """() => Math.max(
  document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0)"""
# The outermost elements that stick out past the right edge of the screen (what to fix).
WIDE = """(limit) => {
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (el.closest("[tabindex=\"0\"]")) continue;
    const parent = el.parentElement && el.parentElement.getBoundingClientRect();
    if (r.right > limit + 1 && !(parent && parent.right > limit + 1)) {
      const cls = typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
      const id = el.id ? '#' + el.id : '';
      out.push(`${el.tagName.toLowerCase()}${id}${cls} (${Math.round(r.right)} px)`);
    }
  }
  return out.slice(0, 5);
}"""


def axe_source() -> str:
    if not AXE_PATH.exists():
        raise RuntimeError(f"{AXE_PATH} is missing: run `npm ci` (make install-dev does)")
    return AXE_PATH.read_text()


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url) or "/"


class Audit:
    """Collects axe's findings for every page one browser context shows."""

    def __init__(self, context, name: str) -> None:
        self.context = context
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:80]
        self.source = axe_source()
        self.findings: list[dict] = []
        self.pages: list[str] = []
        self.shots = SHOTS / self.name
        self.shots.mkdir(parents=True, exist_ok=True)
        for old in self.shots.glob("*.png"):
            old.unlink()
        self.visited: list[str] = []
        context.add_init_script(script=self.source)
        context.add_init_script(script=LIVE_AXE)
        context.expose_binding("__axeReport", self._live_report)
        context.on("page", self._watch)

    # -- hooks -------------------------------------------------------------------------------

    def _watch(self, page) -> None:
        page.on("framenavigated", lambda frame: self._visited(frame))

    def _visited(self, frame) -> None:
        top = frame.parent_frame is None and frame.url.startswith("http")
        if top and frame.url not in self.visited:
            self.visited.append(frame.url)

    def _live_report(self, source, url: str, violations: list[dict]) -> None:
        self._record(path_of(url), "desktop", violations)

    # -- the audit ---------------------------------------------------------------------------

    def check(self, page, url: str) -> None:
        """Open ``url`` again and audit it at the desktop width and at the phone width."""
        label = path_of(url)
        response = page.goto(url)
        if response is None or not response.ok:
            return  # an error page now (the test deleted what it showed): nothing to audit
        index = len(self.pages)
        self.pages.append(label)
        self._record(label, "desktop", page.evaluate(RUN_AXE))
        page.screenshot(path=str(self.shots / f"{index:02d}-desktop.png"), full_page=True)
        desktop = page.viewport_size
        try:
            page.set_viewport_size(PHONE)
            self._record(label, "phone", page.evaluate(RUN_AXE))
            width = page.evaluate(WIDTH)
            if width > PHONE["width"]:
                self.findings.append(
                    {
                        "page": label,
                        "width": "phone",
                        "id": "page-horizontal-scroll",
                        "impact": "serious",
                        "help": f"The page is {width} px wide on a {PHONE['width']} px screen",
                        "nodes": page.evaluate(WIDE, PHONE["width"]) or ["html"],
                    }
                )
            page.screenshot(path=str(self.shots / f"{index:02d}-phone.png"), full_page=True)
        finally:
            page.set_viewport_size(desktop)

    def _record(self, label: str, width: str, violations: list[dict]) -> None:
        for violation in violations:
            self.findings.append({"page": label, "width": width, **violation})

    # -- the verdict -------------------------------------------------------------------------

    def summary(self, impacts: set[str] | None = None) -> dict[str, dict]:
        """By rule: its impact, the nodes it flagged (distinct per page and width) and the pages."""
        rules: dict[str, dict] = defaultdict(lambda: {"nodes": set(), "pages": set()})
        for finding in self.findings:
            if impacts and finding["impact"] not in impacts:
                continue
            rule = rules[finding["id"]]
            rule["impact"] = finding["impact"]
            rule["help"] = finding["help"]
            rule["pages"].add(finding["page"])
            for node in finding["nodes"]:
                rule["nodes"].add((finding["page"], finding["width"], node))
        return {
            rule_id: {
                "impact": rule["impact"],
                "help": rule["help"],
                "nodes": len(rule["nodes"]),
                "pages": sorted(rule["pages"]),
            }
            for rule_id, rule in sorted(rules.items())
        }

    def finish(self, page=None) -> None:
        """Audit the last page, write the report, and fail on serious or critical findings."""
        if page is not None and not page.is_closed():
            for url in list(self.visited):
                self.check(page, url)
        report = {"pages": self.pages, "rules": self.summary(), "findings": self.findings}
        (self.shots / "axe.json").write_text(json.dumps(report, indent=2))
        print(f"\n[axe] {len(self.pages)} pages audited; report and screenshots in {self.shots}")
        blocking = self.summary(BLOCKING)
        if blocking:
            lines = [
                f"  {rule_id} ({rule['impact']}): {rule['nodes']} nodes on {len(rule['pages'])} "
                f"pages, e.g. {rule['pages'][0]}: {rule['help']}"
                for rule_id, rule in blocking.items()
            ]
            raise AssertionError(
                "axe-core found serious or critical violations:\n"
                + "\n".join(lines)
                + f"\n(details in {self.shots / 'axe.json'})"
            )


def combined(folder: Path = SHOTS) -> dict[str, dict]:
    """Every journey's report in ``folder`` merged: by rule, its impact, nodes and pages."""
    rules: dict[str, dict] = defaultdict(lambda: {"nodes": 0, "pages": set()})
    for report in sorted(folder.glob("*/axe.json")):
        for rule_id, rule in json.loads(report.read_text())["rules"].items():
            rules[rule_id]["impact"] = rule["impact"]
            rules[rule_id]["nodes"] += rule["nodes"]
            rules[rule_id]["pages"].update(rule["pages"])
    return dict(sorted(rules.items()))


if __name__ == "__main__":  # python -m tests.e2e.axe: the table the note quotes
    print(f"{'rule':32} {'impact':9} {'nodes':>6} {'pages':>6}")
    for rule_id, rule in combined().items():
        print(f"{rule_id:32} {rule['impact']:9} {rule['nodes']:6} {len(rule['pages']):6}")
