-- Neovim (0.7 or later, built-in LSP client): the policy language server for .policy and .vocab files.
-- Use it with `nvim -u editors/neovim/policy.lua`, or copy the body into your init.lua.
-- POLICY_LSP_CMD overrides the command (default: `policy lsp` from PATH).
vim.filetype = vim.filetype or {}
vim.cmd([[autocmd BufRead,BufNewFile *.policy,*.vocab setfiletype policy]])

local cmd = { "policy", "lsp" }
if vim.env.POLICY_LSP_CMD and vim.env.POLICY_LSP_CMD ~= "" then
  cmd = vim.split(vim.env.POLICY_LSP_CMD, " ", { trimempty = true })
end

local client_id = nil
vim.api.nvim_create_autocmd("FileType", {
  pattern = "policy",
  callback = function(args)
    if client_id == nil or vim.lsp.get_client_by_id(client_id) == nil then
      client_id = vim.lsp.start_client({
        name = "policy",
        cmd = cmd,
        root_dir = vim.fn.getcwd(),
        init_options = { debounceMs = 60 },
      })
    end
    vim.lsp.buf_attach_client(args.buf, client_id)
    vim.bo[args.buf].omnifunc = "v:lua.vim.lsp.omnifunc"
    local opts = { buffer = args.buf }
    vim.keymap.set("n", "K", vim.lsp.buf.hover, opts)
    vim.keymap.set("n", "gd", vim.lsp.buf.definition, opts)
    vim.keymap.set("n", "gr", vim.lsp.buf.references, opts)
    vim.keymap.set("n", "<leader>rn", vim.lsp.buf.rename, opts)
    vim.keymap.set("n", "<leader>ca", vim.lsp.buf.code_action, opts)
    vim.keymap.set("n", "<leader>f", vim.lsp.buf.formatting, opts)
  end,
})
vim.diagnostic.config({ virtual_text = true, signs = true, underline = true })
