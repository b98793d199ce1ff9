-- Test set-up: the plugin from this checkout, the daemon from this checkout, the test vLLM.
-- IQUEST_TEST_* environment variables carry the paths; results go to files the test reads.
local env = vim.env
vim.opt.runtimepath:prepend(env.IQUEST_TEST_PLUGIN)
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
vim.opt.termguicolors = false
-- Typed text lands exactly as typed.
vim.cmd("filetype indent off")
vim.opt.autoindent = false
vim.cmd.colorscheme("default")

local function write(name, value)
  local file = assert(io.open(env.IQUEST_TEST_OUT .. "/" .. name, "w"))
  file:write(vim.json.encode(value))
  file:close()
end

require("iquest").setup({
  cmd = { env.IQUEST_TEST_PYTHON, "-m", "lsp" },
  settings = vim.json.decode(env.IQUEST_TEST_SETTINGS),
})

vim.api.nvim_create_autocmd("LspAttach", {
  callback = function(args)
    write("attached.json", { client = args.data.client_id, version = tostring(vim.version()) })
  end,
})

local shown = 0
vim.api.nvim_create_autocmd("User", {
  pattern = "IquestSuggestion",
  callback = function(args)
    shown = shown + 1
    local ns = vim.api.nvim_create_namespace("iquest.ghost")
    local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
    local first = marks[1] and marks[1][4].virt_text and marks[1][4].virt_text[1][1] or nil
    local cursor = vim.api.nvim_win_get_cursor(0)
    write("suggestion-" .. shown .. ".json", {
      text = args.data.text,
      index = args.data.index,
      count = args.data.count,
      serial = shown,
      extmarks = #marks,
      virt_text = first,
      mark_row = marks[1] and marks[1][2],
      mark_col = marks[1] and marks[1][3],
      cursor = cursor,
    })
  end,
})

-- :lua IquestTestStats() writes the daemon's figures.
function _G.IquestTestStats()
  local client = require("iquest").client(0)
  local answer = client:request_sync("iquest/stats", vim.NIL, 5000, 0)
  write("stats.json", answer.result)
end
