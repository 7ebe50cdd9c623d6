"""The YAML language server that editors run (VS Code's YAML extension, Neovim's yamlls, ...),
driven over stdio as an editor drives it: for the tests that check what an editor shows for a
scenario file with its `# yaml-language-server: $schema=...` line.

Found as UNSTUCK_YAML_LS (a path to `yaml-language-server`), on PATH, or where `.ci/run`
installs it (`.venv/yaml-language-server/`, with npm); without one the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

LOCAL = Path(".venv/yaml-language-server/node_modules/.bin/yaml-language-server")
SKIP_REASON = ("no YAML language server: install it with `npm install --prefix "
               ".venv/yaml-language-server yaml-language-server@1.25.0` (as .ci/run does), or "
               "set UNSTUCK_YAML_LS to its `yaml-language-server` program")
SETTINGS = {"validate": True, "completion": True, "hover": True, "schemaStore": {"enable": False}}


def find() -> str | None:
    named = os.environ.get("UNSTUCK_YAML_LS")
    if named:
        return named
    if LOCAL.exists():
        return str(LOCAL.resolve())
    return shutil.which("yaml-language-server")


class LanguageServer:
    """One server process; `diagnostics`, `completions` and `hover` open a document and wait
    for the server's answer, answering the server's own requests (its settings) meanwhile."""

    def __init__(self, program: str, root: Path) -> None:
        self.proc = subprocess.Popen([program, "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        self.last_id = 0
        self.version = 0
        self.request("initialize", {"processId": os.getpid(), "rootUri": root.resolve().as_uri(),
                                    "capabilities": {"workspace": {"configuration": True},
                                                     "textDocument": {"publishDiagnostics": {}}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": SETTINGS}})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()  # type: ignore[union-attr]

    def diagnostics(self, path: Path, text: str | None = None) -> list[tuple[int, str]]:
        """(line, message) of each problem the server finds in `path` (its text, or `text`
        as if typed there), lines counted from 1 as an editor shows them."""
        uri = self._open(path, text)
        found = self._wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                           and m["params"]["uri"] == uri)
        return sorted((d["range"]["start"]["line"] + 1, d["message"])
                      for d in found["params"]["diagnostics"])

    def completions(self, path: Path, text: str) -> list[str]:
        """The labels the server offers at the end of `text`, as if typed in `path`."""
        return [label for label, _ in self.insertions(path, text)]

    def insertions(self, path: Path, text: str) -> list[tuple[str, str]]:
        """(label, the snippet it inserts) of each completion at the end of `text`."""
        uri = self._open(path, text)
        lines = text.split("\n")
        answer = self.request("textDocument/completion", {
            "textDocument": {"uri": uri},
            "position": {"line": len(lines) - 1, "character": len(lines[-1])}})
        items = answer or []
        return [(i["label"], i.get("insertText") or i.get("textEdit", {}).get("newText", ""))
                for i in (items["items"] if isinstance(items, dict) else items)]

    def hover(self, path: Path, key: str) -> str:
        """The text an editor shows over the first `key:` of `path`."""
        text = path.read_text()
        uri = self._open(path, text)
        line, row = next((n, row) for n, row in enumerate(text.split("\n")) if f"{key}:" in row)
        answer = self.request("textDocument/hover", {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": row.index(f"{key}:") + 1}})
        return (answer or {}).get("contents", {}).get("value", "")

    def _open(self, path: Path, text: str | None) -> str:
        uri = path.resolve().as_uri()
        self.version += 1
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": self.version,
            "text": path.read_text() if text is None else text}})
        return uri

    def request(self, method: str, params: dict) -> Any:
        self.last_id += 1
        asked = self.last_id
        self._send({"jsonrpc": "2.0", "id": asked, "method": method, "params": params})
        answer = self._wait(lambda m: m.get("id") == asked and "method" not in m)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: dict) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def _wait(self, wanted, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message is None:
                raise TimeoutError(f"the language server did not answer within {timeout:g} s")
            if "method" in message and "id" in message:  # the server asks: its settings
                result = ([SETTINGS] * len(message["params"]["items"])
                          if message["method"] == "workspace/configuration" else None)
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            elif wanted(message):
                return message

    def _read(self, deadline: float) -> dict | None:
        assert self.proc.stdout is not None
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                if len(rest) >= length:
                    self.buf = rest[length:]
                    return json.loads(rest[:length])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                raise EOFError("the language server exited")
            self.buf += chunk
