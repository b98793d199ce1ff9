-- Pure parts of the plugin, run with `nvim --headless -l`.
vim.opt.runtimepath:prepend(vim.env.IQUEST_TEST_PLUGIN)
local ghost = require("iquest.ghost")
local actions = require("iquest.actions")
local failures = {}
local function eq(got, want, what)
  if not vim.deep_equal(got, want) then
    table.insert(failures, string.format("%s: got %s, want %s", what, vim.inspect(got), vim.inspect(want)))
  end
end
eq(ghost.next_word("compute(items)"), "compute", "a word")
eq(ghost.next_word("  return x"), "  return", "blanks then a word")
eq(ghost.next_word("(items)"), "(", "punctuation alone")
eq(ghost.next_word("   "), "   ", "blanks only")
eq(ghost.next_word("x\ny"), "x", "stops at a line end")
eq(ghost.next_line("total = x + 1\n    return total"), "total = x + 1", "a line, without its break")
eq(ghost.next_line("\n    return total\nmore"), "\n    return total", "a break first: it and the next line")
eq(ghost.next_line("last"), "last", "the last line")
-- :checkhealth's token file check: mode 600 passes, readable by others fails.
local health = require("iquest.health")
local reported = {}
local real_health = vim.health
vim.health = {
  ok = function(msg) table.insert(reported, "ok: " .. msg) end,
  error = function(msg) table.insert(reported, "error: " .. msg) end,
}
local token_path = vim.fn.tempname()
vim.fn.writefile({ "iq_token" }, token_path)
vim.uv.fs_chmod(token_path, tonumber("644", 8))
health.check_token_file(token_path)
vim.uv.fs_chmod(token_path, tonumber("600", 8))
health.check_token_file(token_path)
health.check_token_file(token_path .. ".missing")
vim.health = real_health
eq(#reported, 3, "three reports")
eq(reported[1]:match("^error: .*mode 644: others can read your token") ~= nil, true, "644 refused: " .. tostring(reported[1]))
eq(reported[2]:match("^ok: token file") ~= nil, true, "600 accepted: " .. tostring(reported[2]))
eq(reported[3]:match("^error: token file not found") ~= nil, true, "missing: " .. tostring(reported[3]))
eq(actions.explanation_lines({ kind = "ask", question = "why?", markdown = "because\nso" }),
  { "# Q: why?", "", "because", "so" }, "ask heading")
eq(actions.explanation_lines({ kind = "explain", markdown = "It adds." })[1], "# Explanation", "explain heading")
local buf = vim.api.nvim_create_buf(false, true)
vim.api.nvim_buf_set_name(buf, "/tmp/iquest-units/app.py")
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "a = 1", "b = 'é€'", "c = 3" })
eq(actions.arguments(buf, { range = 0 }, nil), { uri = "file:///tmp/iquest-units/app.py" }, "whole file")
eq(actions.arguments(buf, { range = 2, line1 = 1, line2 = 2 }, { offset_encoding = "utf-16" }).range,
  { start = { line = 0, character = 0 }, ["end"] = { line = 1, character = 8 } }, "line range in utf-16")
-- A team token file given as "~/...": expanded before it reaches `iquest-lsp connect`.
local cmd = require("iquest").command_line({
  cmd = { "iquest-lsp" }, team_url = "tls://gpu-host:7070", token_file = "~/.config/iquest-token",
})
eq(cmd[1] .. " " .. cmd[2] .. " " .. cmd[3] .. " " .. cmd[4], "iquest-lsp connect tls://gpu-host:7070 --token-file", "connect command")
eq(cmd[5], vim.fn.expand("$HOME") .. "/.config/iquest-token", "token file expanded")
-- Ghost text is grey without termguicolors too (Comment had a GUI colour only).
local iquest = require("iquest")
iquest.define_highlights()
local ghost_hl = vim.api.nvim_get_hl(0, { name = "IquestGhost" })
eq(ghost_hl.ctermfg, 8, "ghost text's terminal colour")
eq(ghost_hl.fg ~= nil, true, "ghost text's GUI colour")
-- The daemon's messages never stop typing with "Press ENTER": one line that fits.
local shown = iquest.notice("iquest: model server http://gpu:8000/v1 refused a request:\n" .. string.rep("x", 500), 2)
eq(shown:find("\n") == nil, true, "one line")
eq(vim.fn.strdisplaywidth(shown) <= math.max(20, vim.v.echospace - 1), true, "fits: " .. shown)
eq(iquest.notices[#iquest.notices]:sub(-500), string.rep("x", 500), "kept whole")
-- The statusline component says which model answers.
eq(iquest.statusline_text(nil), "", "no daemon: nothing")
eq(iquest.statusline_text({ model = "coder-7b", last_latency_ms = 212.4 }), "iquest: coder-7b 212 ms", "model and latency")
eq(iquest.statusline_text({ model = "m", backend_down = true }), "iquest: model server down", "down")
if #failures > 0 then
  io.stderr:write(table.concat(failures, "\n") .. "\n")
  vim.cmd("cquit 1")
end
io.stdout:write("ok\n")
vim.cmd("qall!")
