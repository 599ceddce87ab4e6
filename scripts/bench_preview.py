"""p95 render time of a 50 KB email template with nested Content Blocks, as one person.

No database or Braze: the blocks come from memory, so the figure is the renderer's own
cost (python-liquid plus the Braze dialect). Usage: .venv/bin/python scripts/bench_preview.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from templates_app.personalize import Person, render_as

ROW = (
    "<tr><td>{{ forloop.index }}</td><td>{{ item | upcase }}</td>"
    "<td>{{custom_attribute.${points} | plus: forloop.index | number_with_delimiter}}</td></tr>\n"
)
BLOCKS = {
    "header": "<h1>Hello {{${first_name} | default: 'friend'}}</h1>{{content_blocks.${logo}}}",
    "logo": "<p>{{ 'now' | time_zone: ${time_zone} | date: '%Y-%m-%d' }}</p>",
    "row": ROW,
    "footer": "<p>{% if custom_attribute.${plan} == 'gold' %}Gold{% else %}Basic{% endif %}"
    "{{content_blocks.${legal}}}</p>",
    "legal": "<small>{{ ${email_address} | url_param_escape }}</small>",
}
PERSON = Person(
    "bench",
    {
        "first_name": "Ana",
        "email": "ana@example.com",
        "custom_attributes": {"points": 1250, "plan": "gold", "items": ["figs", "pasta", "tea"]},
    },
    time_zone="Europe/Paris",
)


def template(size: int = 50_000) -> str:
    section = (
        "{{content_blocks.${header}}}<table>"
        "{% for item in custom_attribute.${items} %}{{content_blocks.${row}}}{% endfor %}"
        "</table><p>" + "Plain copy for the reader. " * 20 + "</p>{{content_blocks.${footer}}}\n"
    )
    return (section * (size // len(section) + 1))[:size].rsplit("\n", 1)[0] + "\n"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    content = template()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rendered = render_as(content=content, person=PERSON, blocks=BLOCKS.get)
        times.append(time.perf_counter() - started)
        assert not rendered.stopped, rendered.stopped
    times.sort()
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(
        f"template {len(content.encode()):,} bytes, output {len(rendered.output):,} chars, "
        f"{runs} runs: median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
