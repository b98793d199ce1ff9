-- :checkhealth iquest
local protocol = require("iquest.protocol")
local M = {}

-- The token file: there, not empty, and readable by its owner only (a token is a password).
function M.check_token_file(path)
  local health = vim.health
  local stat = vim.uv.fs_stat(path)
  if not stat or stat.type ~= "file" then
    health.error("token file not found: " .. path, { "iquest-lsp token add NAME prints a token: save it there" })
    return
  end
  local others = bit.band(stat.mode, tonumber("077", 8))
  if others ~= 0 then
    health.error(
      string.format("token file %s is mode %o: others can read your token", path, bit.band(stat.mode, tonumber("777", 8))),
      { "chmod 600 " .. path }
    )
  elseif stat.size == 0 then
    health.error("token file is empty: " .. path)
  else
    health.ok("token file " .. path .. " (mode 600)")
  end
end

function M.check()
  local health = vim.health
  health.start("iquest")
  if vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)")
  end
  if vim.lsp.inline_completion then
    health.ok("native inline completion (vim.lsp.inline_completion)")
  else
    health.info("no native inline completion in this Neovim: iquest shows ghost text itself")
  end
  local config = require("iquest").config
  local exe = config.cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok("daemon: " .. vim.fn.exepath(exe))
  else
    health.error("daemon not found: " .. exe, { "pip install iquest-lsp, or set cmd in setup{}" })
  end
  if config.team_url then
    health.info("team server: " .. config.team_url)
    if config.token_file then
      M.check_token_file(vim.fn.expand(config.token_file))
    elseif not vim.env.IQUEST_TOKEN then
      health.warn("no token: set $IQUEST_TOKEN or token_file")
    end
  end
  -- :checkhealth runs in a buffer of its own: any buffer the daemon is attached to counts.
  local client = vim.lsp.get_clients({ name = "iquest" })[1]
  if not client then
    health.warn("the daemon is not running (open a file of a configured file type first)")
    return
  end
  local buffers = vim.tbl_keys(client.attached_buffers or {})
  if #buffers == 0 then
    health.warn("the daemon runs but no buffer is attached (open a file first)")
    return
  end
  health.ok(string.format("attached: client %d, %d buffer(s)", client.id, #buffers))
  local answer = client:request_sync(protocol.STATS, vim.NIL, 5000, buffers[1])
  local stats = answer and answer.result
  if not stats then
    health.error("the daemon did not answer iquest/stats")
  elseif stats.backend_down then
    health.error("the model server is not answering (see :IquestStats and the daemon's log)")
  else
    health.ok(string.format("model %s, %d suggestions, last latency %s ms", tostring(stats.model),
      stats.suggestions or 0, tostring(stats.last_latency_ms)))
  end
end

return M
