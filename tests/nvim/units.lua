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
eq(actions.explanation_lines({ kind = "ask", question = "why?", markdown = "because\nso" }),
  { "# Q: why?", "", "because", "so" }, "ask heading")
eq(actions.explanation_lines({ kind = "explain", markdown = "It adds." })[1], "# Explanation", "explain heading")
local buf = vim.api.nvim_create_buf(false, true)
vim.api.nvim_buf_set_name(buf, "/tmp/iquest-units/app.py")
vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "a = 1", "b = 'é€'", "c = 3" })
eq(actions.arguments(buf, { range = 0 }, nil), { uri = "file:///tmp/iquest-units/app.py" }, "whole file")
eq(actions.arguments(buf, { range = 2, line1 = 1, line2 = 2 }, { offset_encoding = "utf-16" }).range,
  { start = { line = 0, character = 0 }, ["end"] = { line = 1, character = 8 } }, "line range in utf-16")
if #failures > 0 then
  io.stderr:write(table.concat(failures, "\n") .. "\n")
  vim.cmd("cquit 1")
end
io.stdout:write("ok\n")
vim.cmd("qall!")
