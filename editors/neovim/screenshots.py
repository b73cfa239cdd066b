"""Re-take the screenshots of docs/editors.md: Neovim's built-in LSP client talking to `policy lsp`.

Each scene runs real Neovim (`editors/neovim/policy.lua`) in a detached tmux session on a
temporary copy of the bundled pack, drives it with keystrokes, and captures the terminal
screen (`tmux capture-pane -e`, with colours). The capture is then drawn as a PNG: rich turns
the terminal text into HTML and headless Chromium photographs it. The pixels are a
re-rendering of the terminal's cells, not a window-system screenshot; every character and
colour on them is what Neovim put on its screen.

    PYTHONPATH=. python editors/neovim/screenshots.py docs/editors

Needs nvim (Debian's `neovim`), tmux, chromium and rich.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 128, 32
POLICY = "policies/ear-742.7/2020-10-06.policy"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def keys(session: str, *sequence: str, pause: float = 0.4) -> None:
    for item in sequence:
        tmux("send-keys", "-t", session, item)
        time.sleep(pause)


def start(project: Path, session: str, file: str) -> None:
    python = sys.executable
    script = project / "nvim.sh"
    script.write_text(
        "export TERM=xterm-256color COLORTERM=truecolor\n"
        f"export PYTHONPATH={ROOT}\n"
        f'export POLICY_LSP_CMD="{python} -m engine lsp"\n'
        f"cd {project}\n"
        f"exec nvim -u {ROOT / 'editors/neovim/policy.lua'} -c 'set number' -c 'set laststatus=2' "
        f"-c 'set shortmess+=F' -c 'set completeopt=menuone' -c 'set termguicolors' -c 'colorscheme desert' {file}\n",
        encoding="utf-8",
    )
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    tmux("new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), f"bash {script}")
    time.sleep(4)  # nvim starts, the server initializes and checks the folder


def capture(session: str) -> str:
    return tmux("capture-pane", "-e", "-p", "-t", session)


def render(ansi: str, out: Path, title: str) -> None:
    """Terminal text with escape codes -> PNG, through rich's HTML export and headless Chromium."""
    from rich.console import Console
    from rich.text import Text

    with open(os.devnull, "w", encoding="utf-8") as sink:
        console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=sink)
        # one Text for the whole screen: tmux sets a colour once and lets it run over the lines
        console.print(Text.from_ansi(ansi.rstrip("\n")), no_wrap=True, crop=True)
        html = console.export_html(inline_styles=True)
    html = html.replace(
        "<body>",
        '<body style="margin:0;background:#333333;color:#ffffff"><div style="padding:8px;font-size:13px">'
        f'<div style="font-family:sans-serif;color:#888;margin-bottom:4px">{title}</div>',
    )
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "screen.html"
        page.write_text(html, encoding="utf-8")
        browser = shutil.which("chromium") or "/usr/bin/chromium"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp}/profile",
                f"--screenshot={out}",
                "--window-size=1075,600",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )


def scene_hover(session: str) -> None:
    keys(session, ":29", "Enter", "z", "t", ":call cursor(29, 8)", "Enter", "K", pause=0.6)
    time.sleep(1.5)


def scene_diagnostics(session: str) -> None:
    # misspell a derived fact in a condition and leave insert mode: the squiggle and the message appear
    keys(
        session, ":31", "Enter", "z", "z", ":call cursor(31, 6)", "Enter", "c", "e", "cc_aplication", "Escape"
    )
    time.sleep(2.0)


def scene_completion(session: str) -> None:
    # extend a rule's condition; Ctrl-X Ctrl-O asks the server (omnifunc = vim.lsp.omnifunc)
    keys(session, ":38", "Enter", "z", "z", "A", " and end_user.type = ", pause=0.5)
    keys(session, "C-x", "C-o", pause=0.2)
    time.sleep(1.5)


def scene_lenses(session: str) -> None:
    # code lenses: intent results per rule, evaluate, diff (Neovim shows them as virtual text)
    keys(session, ":lua vim.lsp.codelens.refresh()", "Enter", ":27", "Enter", "z", "t", pause=0.8)
    time.sleep(2.0)


SCENES: dict[str, tuple[str, Callable[[str], None]]] = {
    "hover.png": ("Neovim 0.7 + policy lsp: hover on a rule (K)", scene_hover),
    "diagnostics.png": ("Neovim 0.7 + policy lsp: diagnostics while typing", scene_diagnostics),
    "completion.png": (
        "Neovim 0.7 + policy lsp: completion after `end_user.type = ` (Ctrl-X Ctrl-O)",
        scene_completion,
    ),
    "lenses.png": ("Neovim 0.7 + policy lsp: code lenses (intent results, evaluate, diff)", scene_lenses),
}


def main(out_dir: str) -> int:
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, (title, scene) in SCENES.items():
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            shutil.copytree(ROOT / "policies", project / "policies")
            for sub in ("intent", "cases"):
                shutil.copytree(ROOT / "fixtures" / sub, project / "fixtures" / sub)
            shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
            session = "policy-shots"
            start(project, session, POLICY)
            try:
                scene(session)
                screen = capture(session)
            finally:
                subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
            render(screen, target / name, title)
            print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/editors"))
