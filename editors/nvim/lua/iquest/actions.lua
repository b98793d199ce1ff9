-- The daemon's code actions as commands (:IquestExplain, :IquestFix, :IquestFindBugs,
-- :IquestAsk), with a range or on the whole file; explanations in a floating window.
-- They also appear in vim.lsp.buf.code_action() without this module.
local protocol = require("iquest.protocol")
local M = {}

local function client_for(bufnr)
  local client = require("iquest").client(bufnr)
  if not client then
    vim.notify("iquest: the daemon is not attached to this buffer", vim.log.levels.WARN)
  end
  return client
end

-- {uri, range?} for the daemon: the command's line range, or none (the whole file).
function M.arguments(bufnr, opts, client)
  local args = { uri = vim.uri_from_bufnr(bufnr) }
  if opts.range and opts.range > 0 then
    local last = vim.api.nvim_buf_get_lines(bufnr, opts.line2 - 1, opts.line2, false)[1] or ""
    local encoding = client and client.offset_encoding or "utf-16"
    args.range = {
      start = { line = opts.line1 - 1, character = 0 },
      ["end"] = { line = opts.line2 - 1, character = vim.str_utfindex(last, encoding) },
    }
  end
  return args
end

function M.run(command, opts, extra)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return
  end
  local args = vim.tbl_extend("force", M.arguments(bufnr, opts, client), extra or {})
  client:request("workspace/executeCommand", { command = command, arguments = { args } }, function(err)
    if err then
      vim.notify("iquest: " .. (err.message or tostring(err)), vim.log.levels.WARN)
    end
  end, bufnr)
end

function M.explanation_lines(payload)
  local heading
  if payload.kind == "ask" and payload.question then
    heading = "# Q: " .. payload.question
  else
    heading = "# Explanation"
  end
  local lines = { heading, "" }
  vim.list_extend(lines, vim.split(payload.markdown or "", "\n", { plain = true }))
  return lines
end

M.last_explanation = nil

function M.show_explanation(payload)
  M.last_explanation = payload
  local lines = M.explanation_lines(payload)
  vim.lsp.util.open_floating_preview(lines, "markdown", {
    border = "rounded",
    focus_id = "iquest-explanation",
    max_width = math.max(40, math.floor(vim.o.columns * 0.6)),
    max_height = math.max(10, math.floor(vim.o.lines * 0.6)),
  })
end

function M.create_commands()
  local commands = {
    IquestExplain = protocol.EXPLAIN,
    IquestFix = protocol.FIX,
    IquestFindBugs = protocol.FIND_BUGS,
  }
  for name, command in pairs(commands) do
    vim.api.nvim_create_user_command(name, function(opts)
      M.run(command, opts)
    end, { range = true, desc = "iquest: " .. command })
  end
  vim.api.nvim_create_user_command("IquestAsk", function(opts)
    local question = opts.args ~= "" and opts.args or vim.fn.input("iquest question: ")
    if question ~= "" then
      M.run(protocol.ASK, opts, { question = question })
    end
  end, { range = true, nargs = "*", desc = "iquest: ask about the selection or file" })
  vim.api.nvim_create_user_command("IquestStats", function()
    local client = client_for(0)
    if client then
      local answer = client:request_sync(protocol.STATS, vim.NIL, 5000, 0)
      print(vim.inspect(answer and answer.result))
    end
  end, { desc = "iquest: the daemon's figures" })
end

return M
