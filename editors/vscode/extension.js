// The VS Code client of `policy lsp`: starts the language server and hands it .policy and .vocab files.
//
// Plain JavaScript (no build step): `vsce package` ships this file as it is. Everything the
// editor shows (diagnostics, hover, completion, rename, formatting, quick fixes, code lenses)
// comes from the server; this file only finds the server and starts it.
"use strict";

const fs = require("fs");
const path = require("path");
const vscode = require("vscode");
const { LanguageClient, RevealOutputChannelOn } = require("vscode-languageclient/node");

let client;

/** The executable `name` on PATH (with Windows' extensions), or undefined. */
function onPath(name, env = process.env) {
  const dirs = (env.PATH || env.Path || "").split(path.delimiter).filter(Boolean);
  const exts = process.platform === "win32" ? (env.PATHEXT || ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch (_) {
        // not here
      }
    }
  }
  return undefined;
}

/**
 * How to start the server, from the settings:
 *   policy.server.path        a `policy` executable (absolute, or a name found on PATH)
 *   policy.server.pythonPath  a Python interpreter with the engine installed: `python -m engine lsp`
 *   otherwise                 `policy` on PATH.
 * Returns {command, args} or {error} with what to do.
 */
function serverCommand(config, env = process.env) {
  const explicit = (config.get("server.path") || "").trim();
  const python = (config.get("server.pythonPath") || "").trim();
  if (explicit) {
    const found = path.isAbsolute(explicit) ? explicit : onPath(explicit, env);
    if (!found || !fs.existsSync(found)) {
      return { error: `policy.server.path is "${explicit}", which does not exist` };
    }
    return { command: found, args: ["lsp"] };
  }
  if (python) {
    return { command: python, args: ["-m", "engine", "lsp"] };
  }
  const policy = onPath("policy", env);
  if (policy) return { command: policy, args: ["lsp"] };
  return {
    error:
      "the `policy` command is not on PATH. Install the engine with its lsp extra " +
      "(pip install 'policy-engine[lsp]'), or set policy.server.pythonPath to an interpreter that has it.",
  };
}

/** The server's initializationOptions, from the settings. */
function initializationOptions(config) {
  return {
    debounceMs: config.get("diagnostics.debounceMs"),
    intentDir: config.get("intentDir") || undefined,
    casesDir: config.get("casesDir") || undefined,
  };
}

function clientOptions(config, output) {
  return {
    documentSelector: [
      { scheme: "file", language: "policy" },
      { scheme: "untitled", language: "policy" },
    ],
    synchronize: {
      // tables, intent files, cases, lock files and lint settings change what the server reports
      fileEvents: vscode.workspace.createFileSystemWatcher(
        "**/{*.policy,*.vocab,*.json,*.toml,versions.lock,pyproject.toml}"
      ),
    },
    initializationOptions: initializationOptions(config),
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
}

async function start(context, output) {
  const config = vscode.workspace.getConfiguration("policy");
  const found = serverCommand(config);
  if (found.error) {
    output.appendLine(found.error);
    vscode.window.showErrorMessage(`Policy language server: ${found.error}`);
    return undefined;
  }
  const cwd = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0]
    ? vscode.workspace.workspaceFolders[0].uri.fsPath
    : undefined;
  const serverOptions = { command: found.command, args: found.args, options: cwd ? { cwd } : {} };
  output.appendLine(`starting ${found.command} ${found.args.join(" ")}`);
  const languageClient = new LanguageClient("policy", "Policy language server", serverOptions, clientOptions(config, output));
  await languageClient.start();
  return languageClient;
}

async function activate(context) {
  const output = vscode.window.createOutputChannel("Policy language server");
  context.subscriptions.push(output);
  client = await start(context, output);
  context.subscriptions.push(
    vscode.commands.registerCommand("policy.restartServer", async () => {
      if (client) await client.stop();
      client = await start(context, output);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("policy.server")) {
        await vscode.commands.executeCommand("policy.restartServer");
      }
    })
  );
  return { client: () => client };
}

async function deactivate() {
  if (client) {
    const stopping = client.stop();
    client = undefined;
    await stopping;
  }
}

module.exports = { activate, deactivate, serverCommand, onPath, initializationOptions };
