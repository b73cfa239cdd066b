"""Editor support: the language server behind `policy lsp` (needs the `lsp` extra: pygls, lsprotocol).

Nothing here is imported by `import engine`; `engine.lsp.server` imports pygls.
`engine.lsp.index` and `engine.lsp.workspace` hold the editor-independent parts (what a
name refers to, the diagnostics of unsaved buffers) and need no protocol library.
"""

__all__: list[str] = []
