-- iquest for Neovim: configures the daemon with vim.lsp.config / vim.lsp.enable (0.11+), shows
-- inline suggestions (native on 0.12+, extmark ghost text on 0.10 and 0.11), and adds commands
-- for the code actions. See editors/nvim/README.md.
local protocol = require("iquest.protocol")
local M = {}

M.defaults = {
  -- The daemon. A team server: team_url = "tls://gpu-host:7070" runs `iquest-lsp connect URL`;
  -- the token comes from $IQUEST_TOKEN or token_file, never from this table.
  cmd = { "iquest-lsp" },
  team_url = nil,
  token_file = nil,
  filetypes = nil, -- nil: every buffer with a file type
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  -- The daemon's settings (its TOML tables), sent as initializationOptions and on request.
  settings = {},
  -- "auto": native inline completion where Neovim has it (0.12+), ghost text otherwise.
  ghost = "auto",
  -- next / prev: cycle through candidates (the first press asks the daemon for several).
  keymaps = {
    accept = "<Tab>",
    accept_word = "<C-Right>",
    accept_line = "<C-l>",
    next = "<M-]>",
    prev = "<M-[>",
    dismiss = "<C-]>",
  },
}

M.config = vim.deepcopy(M.defaults)

-- The daemon's command line: `iquest-lsp connect URL` for a team server. A token_file such as
-- "~/.config/iquest-token" is expanded here (no shell runs the command).
function M.command_line(opts)
  if opts.team_url then
    local cmd = { opts.cmd[1], "connect", opts.team_url }
    if opts.token_file then
      vim.list_extend(cmd, { "--token-file", vim.fn.expand(opts.token_file) })
    end
    return cmd
  end
  return opts.cmd
end

-- Ghost text: grey in every terminal. Linked to Comment it was invisible without
-- termguicolors where Comment has a GUI colour only; ctermfg 8 is grey in 16- and 256-colour
-- palettes. `default`: a colour scheme or the user may set IquestGhost themselves.
function M.define_highlights()
  vim.api.nvim_set_hl(0, "IquestGhost", { default = true, fg = "#808080", ctermfg = 8, italic = true })
end

-- The daemon's messages (window/showMessage) while typing: one line that fits the command line
-- (a longer or multi-line message stops Neovim with "Press ENTER"), the whole text kept for
-- :IquestNotices.
M.notices = {}
local HIGHLIGHTS = { [1] = "ErrorMsg", [2] = "WarningMsg" }

function M.notice(message, kind)
  table.insert(M.notices, message)
  if #M.notices > 50 then
    table.remove(M.notices, 1)
  end
  local line = message:gsub("%s*\n%s*", " ")
  local room = math.max(20, (vim.v.echospace or vim.o.columns - 12) - 1)
  if vim.fn.strdisplaywidth(line) > room then
    line = vim.fn.strcharpart(line, 0, room - 1) .. "…"
  end
  vim.schedule(function()
    vim.api.nvim_echo({ { line, HIGHLIGHTS[kind] or "None" } }, false, {})
  end)
  return line
end

-- A statusline component: which model answers and the last latency, from the daemon's
-- iquest/stats (asked every few seconds while a daemon runs). E.g.
--   vim.o.statusline = "%f %= %{v:lua.require'iquest'.statusline()}"
M.last_stats = nil

function M.statusline_text(stats)
  if not stats then
    return ""
  end
  if stats.backend_down then
    return "iquest: model server down"
  end
  local text = "iquest: " .. (stats.model or "starting")
  if type(stats.last_latency_ms) == "number" then
    text = text .. string.format(" %d ms", math.floor(stats.last_latency_ms + 0.5))
  end
  return text
end

function M.statusline()
  return M.statusline_text(M.last_stats)
end

local stats_timer = nil
local function watch_stats()
  if stats_timer then
    return
  end
  stats_timer = vim.uv.new_timer()
  stats_timer:start(0, 5000, vim.schedule_wrap(function()
    local client = vim.lsp.get_clients({ name = "iquest" })[1]
    if not client then
      M.last_stats = nil
      return
    end
    client:request(protocol.STATS, vim.NIL, function(err, result)
      if not err and result then
        M.last_stats = result
      end
    end)
  end))
end

function M.client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = "iquest" })[1]
end

local function uses_native()
  return M.config.ghost == "native" or (M.config.ghost == "auto" and vim.lsp.inline_completion ~= nil)
end

function M.setup(opts)
  if vim.fn.has("nvim-0.11") == 0 then
    vim.notify("iquest: Neovim 0.11 or newer is needed (vim.lsp.config)", vim.log.levels.ERROR)
    return
  end
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  local settings = { iquest = M.config.settings }
  vim.lsp.config("iquest", {
    cmd = M.command_line(M.config),
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = settings,
    settings = settings,
    capabilities = {
      textDocument = { inlineCompletion = { dynamicRegistration = false } },
      -- Explanations arrive as iquest/explanation and open in a float (no document opened).
      experimental = { [protocol.CAPABILITY] = { explanations = true } },
    },
    -- The suggestion request must see the keystroke it follows.
    flags = { debounce_text_changes = 0 },
    handlers = {
      [protocol.EXPLANATION] = function(_, payload)
        require("iquest.actions").show_explanation(payload)
      end,
      ["window/showMessage"] = function(_, params)
        M.notice(params.message, params.type)
      end,
    },
    -- A daemon (or team bridge) that stops, e.g. on a revoked token, says so once; the
    -- reason is in :LspLog. Scheduled: never a blocking prompt while typing.
    on_exit = function(code, signal)
      if code ~= 0 or (signal or 0) ~= 0 then
        M.notice(
          string.format("iquest: the daemon stopped (exit code %d); :LspLog has its reason, :checkhealth iquest checks the set-up", code),
          2
        )
      end
    end,
  })
  vim.lsp.enable("iquest")

  local group = vim.api.nvim_create_augroup("iquest", { clear = true })
  M.define_highlights()
  vim.api.nvim_create_autocmd("ColorScheme", { group = group, callback = M.define_highlights })
  vim.api.nvim_create_user_command("IquestNotices", function()
    for _, message in ipairs(M.notices) do
      vim.api.nvim_echo({ { message } }, false, {})
    end
  end, { desc = "iquest: the daemon's recent messages, whole" })
  vim.api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client or client.name ~= "iquest" then
        return
      end
      watch_stats()
      if uses_native() then
        vim.lsp.inline_completion.enable(true, { bufnr = args.buf })
      else
        require("iquest.ghost").attach(args.buf, client)
      end
    end,
  })
  require("iquest.actions").create_commands()
  require("iquest.ghost").set_keymaps(M.config.keymaps, uses_native())
end

return M
