"""Classic XSS payloads, as customers (and bots, and Meta) could send them.

Each one, if it ever ran, would set `window.__xss` or open a dialog; `MARKERS` are what
an executable context holding one of them contains. Script tags, event handlers,
`javascript:` and `data:` URLs, SVG and MathML, broken and nested markup, attribute
and element breakouts, entity-encoded handlers, template injection (Django, Jinja,
Angular, JS template literals) and a polyglot.
"""

from __future__ import annotations

PAYLOADS: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    '<script src="data:text/javascript,window.__xss=2"></script>',
    "<img src=x onerror=window.__xss=3>",
    '<img src="x" onerror="alert(4)">',
    "<svg onload=window.__xss=5>",
    "<svg><script>window.__xss=6</script></svg>",
    "<body onload=window.__xss=7>",
    '<iframe src="javascript:parent.__xss=8"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=9</script>"></iframe>',
    '<a href="javascript:window.__xss=10">click me</a>',
    "javascript:window.__xss=11",
    "JaVaScRiPt:alert(12)",
    "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTM8L3NjcmlwdD4=",
    '"><script>window.__xss=14</script>',
    "'><img src=x onerror=window.__xss=15>",
    "</textarea><script>window.__xss=16</script>",
    "</title><script>window.__xss=17</script>",
    "<input autofocus onfocus=window.__xss=18>",
    "<details open ontoggle=window.__xss=19>",
    "<video><source onerror=window.__xss=20></video>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=21>",
    "<scr<script>ipt>window.__xss=22</scr</script>ipt>",
    "<<script>window.__xss=23//<</script>",
    '<img """><script>window.__xss=24</script>">',
    "<img src=x onerror=&#119;indow.__xss=25>",
    '<object data="javascript:window.__xss=26"></object>',
    '<embed src="javascript:window.__xss=27">',
    '<form><button formaction="javascript:window.__xss=28">go</button></form>',
    "<marquee onstart=window.__xss=29>x</marquee>",
    '<style>*{background:url("javascript:window.__xss=30")}</style>',
    '<a href="&#106;avascript:window.__xss=31">x</a>',
    "<img src=x:x onerror=prompt(32)>",
    "{{7*7}}",
    "{{constructor.constructor('window.__xss=34')()}}",
    "${7*7} #{7*7} <%= 7*7 %>",
    "{% debug %}{{ request.user }}",
    "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=window.__xss=37 )//%0D%0A%0d%0a//"
    "</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=window.__xss=37//>\\x3e",
)

# What an executable context (a handler attribute, a script, a javascript: URL) holding
# one of the payloads contains.
MARKERS = ("__xss", "alert(", "prompt(", "constructor(")
