"""Screenshots of what the Slack bot answers, rendered from its real Block Kit answers (README, "Slack").

    .venv/bin/python docs/tools/slack_screenshot.py            # writes docs/ui/slack-show-card.png, slack-search.png
    .venv/bin/python docs/tools/slack_screenshot.py --keep     # also keeps the database, JSON answers and HTML

What it does, all in one process and on loopback only:

1. starts the app in-process (``create_app``, the ASGI app called through httpx, no network) on a fresh SQLite
   database in a temporary folder, so the first start loads the example prompts (``sentiment/few-shot`` with
   its ``production`` label among them), with a Slack signing secret made up for the run;
2. links a Slack user to the bootstrap admin as a user would (``/prompt login``, then ``POST
   /api/v1/slack/links`` with the code and the admin's login session);
3. sends each slash command as Slack does (a form post to ``/slack/commands`` signed with HMAC-SHA256 of
   ``v0:<timestamp>:<body>``) and keeps the Block Kit JSON the bot answers;
4. renders each answer to HTML with the small Block Kit renderer below (header, section, context, divider,
   actions blocks; mrkdwn bold, italic, strike, code, preformatted text, links, mentions) in Slack's light
   theme, and screenshots it with Debian's chromium through playwright-core (``slack_screenshot.mjs``).

The renderer refuses block and element types it does not know instead of leaving them out, so a screenshot
never hides part of an answer. Needs ``node`` and ``web/node_modules`` (``make install``) and
``/usr/bin/chromium`` (or ``CHROMIUM_PATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "docs" / "ui"
WEB_URL = "https://promptops.example.com"  # PROMPTOPS_SLACK_WEB_URL: where the card's button links
TEAM, USER, CHANNEL = "T0001", "U0001", "C0001"
ADMIN_EMAIL = "admin@localhost"


@dataclass(frozen=True)
class Shot:
    name: str  # the PNG's name in docs/ui
    text: str  # what follows /prompt


SHOTS = (
    Shot("slack-show-card", "show sentiment/few-shot@production"),
    Shot("slack-search", "search sentiment"),
)


# --- the bot's answers ------------------------------------------------------------------------------------


def signed_headers(secret: str, body: str) -> dict[str, str]:
    """The headers Slack sends with a request: its timestamp and ``v0=`` + HMAC-SHA256 of ``v0:<ts>:<body>``."""
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={mac}",
    }


async def slash(client: httpx.AsyncClient, secret: str, text: str) -> dict[str, Any]:
    """``/prompt <text>`` typed by USER in CHANNEL: the JSON the bot answers."""
    body = urlencode(
        {
            "team_id": TEAM,
            "user_id": USER,
            "channel_id": CHANNEL,
            "command": "/prompt",
            "text": text,
            "response_url": "",
        }
    )
    r = await client.post("/slack/commands", content=body, headers=signed_headers(secret, body))
    if r.status_code != 200:
        raise SystemExit(f"/prompt {text}: HTTP {r.status_code} {r.text}")
    answer: dict[str, Any] = r.json()
    return answer


async def link_user(client: httpx.AsyncClient, secret: str, password: str) -> None:
    """Link USER to the bootstrap admin: ``/prompt login``, then redeem the code with the admin's session."""
    login = await slash(client, secret, "login")
    match = re.search(r"\*([0-9A-F]{6}-[0-9A-F]{6})\*", login["text"])
    if not match:
        raise SystemExit(f"/prompt login answered no code: {login['text']}")
    r = await client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": password})
    if r.status_code != 200:
        raise SystemExit(f"admin login: HTTP {r.status_code} {r.text}")
    token = r.json()["token"]
    r = await client.post(
        "/api/v1/slack/links", json={"code": match.group(1)}, headers={"Authorization": f"Bearer {token}"}
    )
    if r.status_code != 201:
        raise SystemExit(f"linking the Slack user: HTTP {r.status_code} {r.text}")


async def capture(workdir: Path) -> list[tuple[Shot, dict[str, Any], datetime]]:
    """Start the app on a fresh database in ``workdir`` and collect the answer to each of SHOTS."""
    for name in [n for n in os.environ if n.startswith("PROMPTOPS_")]:
        del os.environ[name]  # only the settings below, whatever the shell exports
    # imported here, once the environment is clean
    from promptops.app import create_app
    from promptops.config import Settings
    from promptops.logging import configure_logging

    configure_logging("WARNING", json=False)  # the request log would drown the script's own output

    secret, password = secrets.token_hex(16), secrets.token_urlsafe(16)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'promptops.db'}",
        data_dir=workdir / "data",
        bootstrap_admin_email=ADMIN_EMAIL,
        bootstrap_admin_password=password,
        load_examples=True,
        web_dir=workdir / "no-web-ui",
        log_level="WARNING",
        slack_signing_secret=secret,
        slack_notify_interval_seconds=0,
        slack_web_url=WEB_URL,
    )
    app = create_app(settings)
    answers: list[tuple[Shot, dict[str, Any], datetime]] = []
    with contextlib.redirect_stdout(io.StringIO()):  # the first start prints the admin credentials
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://promptops.local") as client:
            await link_user(client, secret, password)
            for shot in SHOTS:
                answer = await slash(client, secret, shot.text)
                answers.append((shot, answer, datetime.now()))
    finally:
        await lifespan.__aexit__(None, None, None)
    return answers


# --- Block Kit to HTML ------------------------------------------------------------------------------------

EMOJI = {
    "no_entry": "\u26d4",
    "warning": "\u26a0\ufe0f",
    "x": "\u274c",
    "white_check_mark": "\u2705",
    "hourglass_flowing_sand": "\u23f3",
    "rocket": "\U0001f680",
    "rewind": "\u23ea",
    "bar_chart": "\U0001f4ca",
    "link": "\U0001f517",
}
PLACEHOLDER = "\ue000{}\ue001"
PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")
BREAKS_AROUND_RE = re.compile("(<br>)?(\ue000(\\d+)\ue001)(<br>)?")
PRE_RE = re.compile(r"```(.*?)```", re.S)
CODE_RE = re.compile(r"`([^`\n]+)`")
CONTROL_RE = re.compile(r"<([^<>\n]+)>")  # <url|label>, <#C123|name>, <@U123>, <!here>
EMPHASIS = (  # Slack's rule: the markers hug the text and do not touch a word character outside
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
)
EMOJI_RE = re.compile(r":([a-z0-9_+-]+):")


def unescape_slack(text: str) -> str:
    """Slack's three escapes in message text (``&amp;``, ``&lt;``, ``&gt;``) back to characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji(escaped: str) -> str:
    return EMOJI_RE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), escaped)


def control(inner: str) -> str:
    """A ``<...>`` sequence: a link, a channel or user mention, or a special mention."""
    target, _, label = inner.partition("|")
    if target.startswith("#"):
        return f'<span class="mention">#{html.escape(label or target[1:])}</span>'
    if target.startswith("@"):
        return f'<span class="mention">@{html.escape(label or target[1:])}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{html.escape(label or target[1:].split("^")[0])}</span>'
    url = unescape_slack(target)
    shown = unescape_slack(label) if label else url
    return f'<a href="{html.escape(url)}">{html.escape(shown)}</a>'


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as HTML: preformatted blocks and code spans first (nothing inside them is formatted),
    then links and mentions, then bold/italic/strike, emoji, quotes and line breaks."""
    pieces: list[str] = []

    def keep(rendered: str) -> str:
        pieces.append(rendered)
        return PLACEHOLDER.format(len(pieces) - 1)

    def pre(m: re.Match[str]) -> str:
        body = CONTROL_RE.sub(lambda c: c.group(1).partition("|")[2] or c.group(1), m.group(1))
        return keep(f'<pre class="pre">{html.escape(unescape_slack(body.strip(chr(10))))}</pre>')

    text = PRE_RE.sub(pre, text)
    text = CODE_RE.sub(
        lambda m: keep(f'<code class="code">{html.escape(unescape_slack(m.group(1)))}</code>'), text
    )
    text = CONTROL_RE.sub(lambda m: keep(control(m.group(1))), text)
    out = html.escape(unescape_slack(text), quote=False)
    for pattern, tag in EMPHASIS:
        out = pattern.sub(rf"<{tag}>\1</{tag}>", out)
    out = emoji(out)
    lines = []
    for line in out.split("\n"):
        quoted = line.startswith("&gt; ")
        lines.append(f'<span class="quote">{line[5:]}</span>' if quoted else line)
    out = "<br>".join(lines)
    # a line break just before or after a preformatted block is the block's own
    out = BREAKS_AROUND_RE.sub(
        lambda m: m.group(2) if pieces[int(m.group(3))].startswith("<pre") else m.group(0), out
    )
    return PLACEHOLDER_RE.sub(lambda m: pieces[int(m.group(1))], out)


def text_object(obj: dict[str, Any]) -> str:
    kind = obj.get("type")
    if kind == "mrkdwn":
        return mrkdwn(str(obj["text"]))
    if kind == "plain_text":
        return emoji(html.escape(str(obj["text"]), quote=False)).replace("\n", "<br>")
    raise ValueError(f"unknown text object type {kind!r}")


def button(element: dict[str, Any]) -> str:
    style = element.get("style")
    css = "button" + (f" button-{style}" if style in ("primary", "danger") else "")
    label = text_object(element["text"])
    if "url" in element:
        return f'<a class="{css}" href="{html.escape(element["url"])}">{label}</a>'
    return f'<span class="{css}">{label}</span>'


def image(element: dict[str, Any], css: str) -> str:
    url, alt = html.escape(element["image_url"]), html.escape(element.get("alt_text", ""))
    return f'<img class="{css}" src="{url}" alt="{alt}">'


def block(b: dict[str, Any]) -> str:
    kind = b.get("type")
    if kind == "header":
        return f'<div class="block header">{text_object(b["text"])}</div>'
    if kind == "divider":
        return '<div class="block divider"></div>'
    if kind == "section":
        parts = []
        if "text" in b:
            parts.append(f'<div class="section-text">{text_object(b["text"])}</div>')
        if b.get("fields"):
            cells = "".join(f'<div class="field">{text_object(f)}</div>' for f in b["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        accessory = ""
        if acc := b.get("accessory"):
            if acc.get("type") == "button":
                accessory = f'<div class="accessory">{button(acc)}</div>'
            elif acc.get("type") == "image":
                accessory = f'<div class="accessory">{image(acc, "accessory-image")}</div>'
            else:
                raise ValueError(f"unknown section accessory {acc.get('type')!r}")
        return f'<div class="block section"><div class="section-main">{"".join(parts)}</div>{accessory}</div>'
    if kind == "context":
        items = []
        for element in b["elements"]:
            if element.get("type") == "image":
                items.append(image(element, "context-image"))
            else:
                items.append(f'<span class="context-item">{text_object(element)}</span>')
        return f'<div class="block context">{"".join(items)}</div>'
    if kind == "actions":
        items = []
        for element in b["elements"]:
            if element.get("type") != "button":
                raise ValueError(f"unknown actions element {element.get('type')!r}")
            items.append(button(element))
        return f'<div class="block actions">{"".join(items)}</div>'
    raise ValueError(f"unknown block type {kind!r}")


EYE = (
    '<svg width="14" height="14" viewBox="0 0 20 20" aria-hidden="true"><path fill="currentColor" '
    'd="M10 4C5.5 4 2.3 7.2 1 10c1.3 2.8 4.5 6 9 6s7.7-3.2 9-6c-1.3-2.8-4.5-6-9-6Zm0 10a4 4 0 1 1 0-8 4 4 0 0 1 '
    '0 8Zm0-6a2 2 0 1 0 0 4 2 2 0 0 0 0-4Z"/></svg>'
)

CSS = """
* { box-sizing: border-box; }
body { margin: 0; background: #f8f8f8; }
#shot { width: 780px; padding: 0; background: #fff; border: 1px solid #dddddd; }
.pane, .caption { font-family: Lato, "Slack-Lato", "Liberation Sans", Arial, sans-serif; color: #1d1c1d; }
.caption { padding: 10px 20px; border-bottom: 1px solid #e8e8e8; font-size: 13px; color: #616061;
  background: #f8f8f8; }
.caption code { font-family: Monaco, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace;
  font-size: 12px; color: #1d1c1d; }
.message { padding: 10px 20px 14px; }
.ephemeral { display: flex; align-items: center; gap: 6px; margin: 0 0 4px 48px; font-size: 13px; color: #616061; }
.row { display: flex; gap: 8px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; flex: none; margin-top: 3px; }
.body { flex: 1; min-width: 0; font-size: 15px; line-height: 1.46668; }
.meta { display: flex; align-items: baseline; gap: 6px; }
.name { font-weight: 900; font-size: 15px; }
.app { font-size: 10px; font-weight: 700; letter-spacing: .2px; color: rgba(29,28,29,.7);
  background: rgba(29,28,29,.13); border-radius: 2px; padding: 1px 3px; align-self: center; }
.time { font-size: 12px; color: #616061; }
.block { margin: 4px 0; }
.header { font-size: 18px; font-weight: 900; line-height: 1.33; margin: 6px 0 8px; }
.section { display: flex; gap: 12px; align-items: flex-start; }
.section-main { flex: 1; min-width: 0; overflow-wrap: anywhere; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 16px; margin-top: 4px; }
.accessory { flex: none; }
.accessory-image { width: 88px; height: 88px; border-radius: 4px; object-fit: cover; }
.context { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 12px; font-size: 12px;
  line-height: 1.5; color: #616061; }
.context b { color: #454245; }
.context-image { width: 20px; height: 20px; border-radius: 4px; }
.divider { border-top: 1px solid #dddddd; margin: 12px 0; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.button { display: inline-flex; align-items: center; height: 28px; padding: 0 12px; border-radius: 4px;
  border: 1px solid rgba(29,28,29,.3); background: #fff; color: #1d1c1d; font-size: 13px; font-weight: 700;
  text-decoration: none; }
.button-primary { background: #007a5a; border-color: #007a5a; color: #fff; }
.button-danger { background: #e01e5a; border-color: #e01e5a; color: #fff; }
a { color: #1264a3; text-decoration: none; }
b { font-weight: 700; }
.mention { color: #1264a3; background: rgba(29,155,209,.1); border-radius: 3px; padding: 0 2px; }
.quote { display: inline-block; border-left: 4px solid #dddddd; padding-left: 12px; }
.code { font-family: Monaco, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 12px;
  color: #e01e5a; background: rgba(29,28,29,.04); border: 1px solid rgba(29,28,29,.13); border-radius: 3px;
  padding: 2px 3px 1px; }
.pre { font-family: Monaco, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 12px;
  line-height: 1.5; white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0; padding: 8px;
  background: rgba(29,28,29,.04); border: 1px solid rgba(29,28,29,.13); border-radius: 4px; color: #1d1c1d; }
"""


def avatar_uri() -> str:
    """The app's icon: the PromptOps logo of the web UI."""
    logo = ROOT / "web" / "public" / "favicon.svg"
    return "data:image/svg+xml;base64," + base64.b64encode(logo.read_bytes()).decode()


def page(command: str, answer: dict[str, Any], when: datetime) -> str:
    """A Slack message pane showing ``answer`` (a slash-command answer) as its bot message."""
    blocks = "".join(block(b) for b in answer.get("blocks") or [])
    if not blocks:  # a message without blocks shows its text
        blocks = f'<div class="block section">{mrkdwn(answer["text"])}</div>'
    ephemeral = answer.get("response_type", "ephemeral") == "ephemeral"
    note = f'<div class="ephemeral">{EYE}<span>Only visible to you</span></div>' if ephemeral else ""
    stamp = when.strftime("%I:%M %p").lstrip("0")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(command)}</title><style>{CSS}</style></head>
<body><div id="shot">
<div class="caption"><code>{html.escape(command)}</code>: rendered from the bot's real Block Kit answer</div>
<div class="pane message">{note}
<div class="row"><img class="avatar" src="{avatar_uri()}" alt="">
<div class="body"><div class="meta"><span class="name">PromptOps</span><span class="app">APP</span>
<span class="time">{stamp}</span></div>
<div class="blocks">{blocks}</div></div></div></div>
</div></body></html>
"""


# --- screenshots ------------------------------------------------------------------------------------------


def screenshot(pairs: list[tuple[Path, Path]]) -> None:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH")
    if not (ROOT / "web" / "node_modules" / "playwright-core").is_dir():
        raise SystemExit(
            "web/node_modules/playwright-core is missing: run `make install` (or npm ci in web/)"
        )
    args = [str(p) for pair in pairs for p in pair]
    script = Path(__file__).with_suffix(".mjs")
    subprocess.run([node, str(script), *args], check=True, cwd=ROOT)  # noqa: S603 (our own script and paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the PNGs (default docs/ui)")
    parser.add_argument("--keep", action="store_true", help="keep the database, JSON answers and HTML pages")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="promptops-slack-shots-"))
    try:
        answers = asyncio.run(capture(workdir))
        pairs = []
        for shot, answer, when in answers:
            command = f"/prompt {shot.text}"
            (workdir / f"{shot.name}.json").write_text(
                json.dumps(answer, indent=2, ensure_ascii=False) + "\n"
            )
            page_path = workdir / f"{shot.name}.html"
            page_path.write_text(page(command, answer, when), encoding="utf-8")
            pairs.append((page_path, args.out / f"{shot.name}.png"))
        args.out.mkdir(parents=True, exist_ok=True)
        screenshot(pairs)
    finally:
        if args.keep:
            print(f"kept {workdir} (database, *.json answers, *.html pages)", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
