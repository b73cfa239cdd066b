// The extension's client wiring, under node with stand-ins for `vscode` and for
// vscode-languageclient's LanguageClient (no VS Code can be downloaded here; see docs/editors.md):
// what activate() hands the client (server command, selector, watchers, options) is what a real
// VS Code would get. The real library cannot load outside VS Code (it extends vscode's classes),
// so its type declarations are checked for the names the extension imports.
"use strict";

const test = require("node:test");
const assert = require("node:assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const Module = require("module");

const calls = { errors: [], clients: [], commands: {}, watchers: [] };
let settings = {};

const vscodeStub = {
  workspace: {
    getConfiguration: (section) => ({ get: (key) => settings[`${section}.${key}`] }),
    createFileSystemWatcher: (glob) => {
      calls.watchers.push(glob);
      return { glob, dispose() {} };
    },
    onDidChangeConfiguration: () => ({ dispose() {} }),
    workspaceFolders: [{ uri: { fsPath: "/project" } }],
  },
  window: {
    createOutputChannel: () => ({ lines: [], appendLine(line) { this.lines.push(line); }, dispose() {} }),
    showErrorMessage: (message) => calls.errors.push(message),
  },
  commands: {
    registerCommand: (name, fn) => {
      calls.commands[name] = fn;
      return { dispose() {} };
    },
    executeCommand: (name) => calls.commands[name](),
  },
};

const originalLoad = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === "vscode") return vscodeStub;
  if (request === "vscode-languageclient/node" && parent && parent.filename.endsWith("extension.js")) return clientStub;
  return originalLoad.call(this, request, parent, isMain);
};
const realClientModule = { RevealOutputChannelOn: { Debug: 0, Info: 1, Warn: 2, Error: 3, Never: 4 } };
class FakeLanguageClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, name, serverOptions, clientOptions, started: false, stopped: false });
    calls.clients.push(this);
  }
  async start() { this.started = true; }
  async stop() { this.stopped = true; }
}
const clientStub = { ...realClientModule, LanguageClient: FakeLanguageClient };

const extension = require("../extension.js");

test("the installed vscode-languageclient exports what the extension imports", () => {
  const lib = path.join(__dirname, "..", "node_modules", "vscode-languageclient", "lib");
  const main = fs.readFileSync(path.join(lib, "node", "main.d.ts"), "utf8");
  const common = fs.readFileSync(path.join(lib, "common", "client.d.ts"), "utf8");
  assert.match(main, /export declare class LanguageClient /);
  assert.match(common, /export declare enum RevealOutputChannelOn/);
  assert.match(common, /Never = 4/);
});

function context() {
  return { subscriptions: [] };
}

function fakePolicyOnPath() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-bin-"));
  const exe = path.join(dir, "policy");
  fs.writeFileSync(exe, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  return { dir, exe };
}

test.beforeEach(() => {
  calls.errors = [];
  calls.clients = [];
  calls.watchers = [];
  settings = {};
});

test("finds `policy` on PATH and starts `policy lsp` for policy files", async () => {
  const { dir, exe } = fakePolicyOnPath();
  const saved = process.env.PATH;
  process.env.PATH = dir + path.delimiter + saved;
  try {
    settings = { "policy.diagnostics.debounceMs": 60 };
    await extension.activate(context());
  } finally {
    process.env.PATH = saved;
  }
  assert.strictEqual(calls.clients.length, 1);
  const client = calls.clients[0];
  assert.ok(client.started);
  assert.deepStrictEqual(client.serverOptions, { command: exe, args: ["lsp"], options: { cwd: "/project" } });
  assert.deepStrictEqual(client.clientOptions.documentSelector, [
    { scheme: "file", language: "policy" },
    { scheme: "untitled", language: "policy" },
  ]);
  assert.strictEqual(client.clientOptions.initializationOptions.debounceMs, 60);
  assert.match(calls.watchers[0], /\*\.vocab/);
  assert.ok("policy.restartServer" in calls.commands);
  await extension.deactivate();
  assert.ok(client.stopped);
});

test("a configured interpreter runs `python -m engine lsp`", async () => {
  settings = { "policy.server.pythonPath": "/opt/venv/bin/python", "policy.intentDir": "fixtures/intent" };
  await extension.activate(context());
  const client = calls.clients[0];
  assert.strictEqual(client.serverOptions.command, "/opt/venv/bin/python");
  assert.deepStrictEqual(client.serverOptions.args, ["-m", "engine", "lsp"]);
  assert.strictEqual(client.clientOptions.initializationOptions.intentDir, "fixtures/intent");
  await extension.deactivate();
});

test("without a server it says how to get one, and starts nothing", async () => {
  const saved = process.env.PATH;
  process.env.PATH = fs.mkdtempSync(path.join(os.tmpdir(), "empty-"));
  try {
    await extension.activate(context());
  } finally {
    process.env.PATH = saved;
  }
  assert.strictEqual(calls.clients.length, 0);
  assert.strictEqual(calls.errors.length, 1);
  assert.match(calls.errors[0], /pip install 'policy-engine\[lsp\]'/);
});

test("a server path that does not exist is reported", () => {
  const found = extension.serverCommand({ get: (k) => (k === "server.path" ? "/nowhere/policy" : "") });
  assert.match(found.error, /does not exist/);
});

test("restart stops the running client and starts a new one", async () => {
  settings = { "policy.server.pythonPath": "python3" };
  await extension.activate(context());
  await calls.commands["policy.restartServer"]();
  assert.strictEqual(calls.clients.length, 2);
  assert.ok(calls.clients[0].stopped && calls.clients[1].started);
  await extension.deactivate();
});

test("package.json wires the language, the entry point and the settings", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
  assert.strictEqual(manifest.main, "./extension.js");
  assert.deepStrictEqual(manifest.activationEvents, ["onLanguage:policy"]);
  assert.deepStrictEqual(manifest.contributes.languages[0].extensions, [".policy", ".vocab"]);
  for (const key of ["policy.server.path", "policy.server.pythonPath", "policy.diagnostics.debounceMs"]) {
    assert.ok(key in manifest.contributes.configuration.properties, key);
  }
  assert.ok(manifest.dependencies["vscode-languageclient"]);
});
