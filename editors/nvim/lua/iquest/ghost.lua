-- Ghost text for Neovim 0.10 and 0.11, which have no inline completion UI: asks the daemon for
-- textDocument/inlineCompletion as you type and shows the answer as extmarks (the first line
-- inline at the cursor, the rest as virtual lines). Accept, accept a word or a line, dismiss,
-- cycle through candidates (an explicit request: the daemon answers with several).
local protocol = require("iquest.protocol")
local M = {}

local ns = vim.api.nvim_create_namespace("iquest.ghost")
-- Per buffer: { client, request_id, suggestion = { text, row, col, tick, command, items, index } }
-- (items: every candidate's { text, command }; index: the one showing).
local state = {}

local function clear(bufnr)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local s = state[bufnr]
  if s then
    s.suggestion = nil
  end
end

local function cancel(bufnr)
  local s = state[bufnr]
  if s and s.request_id and s.client then
    s.client:cancel_request(s.request_id)
  end
  if s then
    s.request_id = nil
  end
end

local function show(bufnr, text, row, col)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local lines = vim.split(text, "\n", { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], "IquestGhost" } })
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, {
    virt_text = { { lines[1], "IquestGhost" } },
    virt_text_pos = "inline",
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = "combine",
  })
end

-- The current suggestion for the buffer, if one is showing at the cursor.
function M.current(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = state[bufnr]
  return s and s.suggestion or nil
end

-- Shows candidate `index` of the buffer's suggestion and tells listeners (User IquestSuggestion).
local function show_item(bufnr, s, index)
  local suggestion = s.suggestion
  local item = suggestion.items[index]
  suggestion.index, suggestion.text, suggestion.command = index, item.text, item.command
  show(bufnr, item.text, suggestion.row, suggestion.col)
  vim.api.nvim_exec_autocmds("User", {
    pattern = "IquestSuggestion",
    data = { text = item.text, index = index, count = #suggestion.items },
  })
end

-- Asks for suggestions at the cursor: automatic (as you type: one) or explicit (several to
-- cycle through); `pick(count)` says which to show first.
local function ask(bufnr, explicit, pick)
  local s = state[bufnr]
  if not s or vim.api.nvim_get_mode().mode:sub(1, 1) ~= "i" then
    return
  end
  cancel(bufnr)
  clear(bufnr)
  local client = s.client
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  -- 1: invoked (the daemon answers with its candidates); 2: automatic (it debounces).
  params.context = { triggerKind = explicit and 1 or 2 }
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local ok, id = client:request("textDocument/inlineCompletion", params, function(err, result)
    if s.request_id == nil then
      return
    end
    s.request_id = nil
    if err or not result then
      return
    end
    local items = {}
    for _, item in ipairs(result.items or result or {}) do
      if type(item.insertText) == "string" and item.insertText ~= "" then
        table.insert(items, { text = item.insertText, command = item.command })
      end
    end
    if #items == 0 then
      return
    end
    -- Stale if the buffer or the cursor moved since the request.
    local now_row, now_col = unpack(vim.api.nvim_win_get_cursor(0))
    if vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or now_row ~= row or now_col ~= col then
      return
    end
    s.suggestion = { row = row - 1, col = col, tick = tick, items = items }
    show_item(bufnr, s, pick(#items))
  end, bufnr)
  if ok then
    s.request_id = id
  end
end

function M.request(bufnr)
  ask(bufnr, false, function()
    return 1
  end)
end

-- The next (step 1) or previous (step -1) candidate. With one candidate showing (as you type),
-- asks the daemon for several and shows the next of them.
function M.cycle(step, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = state[bufnr]
  if not s then
    return false
  end
  local suggestion = s.suggestion
  if suggestion and suggestion.items and #suggestion.items > 1 then
    show_item(bufnr, s, (suggestion.index - 1 + step) % #suggestion.items + 1)
    return true
  end
  ask(bufnr, true, function(count)
    return ((step > 0 and 1 or -1) % count) + 1
  end)
  return true
end

local function insert(bufnr, text)
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row - 1, col, row - 1, col, lines)
  local last = lines[#lines]
  local end_row = row + #lines - 1
  local end_col = #lines == 1 and col + #last or #last
  vim.api.nvim_win_set_cursor(0, { end_row, end_col })
end

-- The showing suggestion, taken off the screen (nil when none shows), and the buffer's state.
local function take(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local suggestion = M.current(bufnr)
  if suggestion then
    clear(bufnr)
  end
  return suggestion, bufnr, state[bufnr]
end

-- Takes the whole suggestion; the item's command tells the daemon it was accepted.
function M.accept(bufnr)
  local suggestion, s
  suggestion, bufnr, s = take(bufnr)
  if not suggestion then
    return false
  end
  insert(bufnr, suggestion.text)
  if suggestion.command and s.client then
    s.client:exec_cmd(suggestion.command, { bufnr = bufnr })
  end
  return true
end

-- The next word of a suggestion: leading blanks plus a word, or one other character.
function M.next_word(text)
  local word = text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]") or text:match("^%s+")
  return word or text
end

-- The rest of a suggestion's line: up to its first line break, or, when it starts with one,
-- that break and the next line (accepting "a line" always inserts something).
function M.next_line(text)
  local first = text:match("^[^\n]*")
  if first ~= "" then
    return first
  end
  return text:match("^\n[^\n]*")
end

-- Takes a part of the suggestion (`part(text)`), tells the daemon, shows the rest.
local function accept_part(bufnr, part)
  local suggestion, s
  suggestion, bufnr, s = take(bufnr)
  if not suggestion then
    return false
  end
  local taken = part(suggestion.text)
  local rest = suggestion.text:sub(#taken + 1)
  insert(bufnr, taken)
  s.client:notify(protocol.PARTIAL_ACCEPT, {
    uri = vim.uri_from_bufnr(bufnr),
    acceptedLength = vim.str_utfindex(taken, "utf-16"),
  })
  if rest ~= "" then
    local row, col = unpack(vim.api.nvim_win_get_cursor(0))
    s.suggestion = {
      text = rest,
      row = row - 1,
      col = col,
      tick = vim.api.nvim_buf_get_changedtick(bufnr),
      items = { { text = rest } },
      index = 1,
    }
    s.skip_next_change = true -- our own insertion must not ask again
    show(bufnr, rest, row - 1, col)
  end
  return true
end

function M.accept_word(bufnr)
  return accept_part(bufnr, M.next_word)
end

function M.accept_line(bufnr)
  return accept_part(bufnr, M.next_line)
end

function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  cancel(bufnr)
  local had = M.current(bufnr) ~= nil
  clear(bufnr)
  return had
end

function M.attach(bufnr, client)
  if state[bufnr] then
    state[bufnr].client = client
    return
  end
  state[bufnr] = { client = client }
  local group = vim.api.nvim_create_augroup("iquest.ghost." .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd("TextChangedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      if state[bufnr].skip_next_change then
        state[bufnr].skip_next_change = false
        return
      end
      M.request(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      local suggestion = M.current(bufnr)
      if suggestion then
        local row, col = unpack(vim.api.nvim_win_get_cursor(0))
        if row - 1 ~= suggestion.row or col ~= suggestion.col then
          M.dismiss(bufnr)
        end
      end
    end,
  })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.data.client_id == client.id then
        M.dismiss(bufnr)
        state[bufnr] = nil
        vim.api.nvim_del_augroup_by_id(group)
      end
    end,
  })
end

-- Insert-mode keys that act on a suggestion and otherwise do what they always did.
function M.set_keymaps(keymaps, native)
  local function map(lhs, action, native_action)
    if not lhs then
      return
    end
    vim.keymap.set("i", lhs, function()
      local done
      if native then
        done = native_action and native_action() or false
      else
        done = action()
      end
      if not done then
        vim.api.nvim_feedkeys(vim.keycode(lhs), "n", false)
      end
    end, { desc = "iquest: suggestion" })
  end
  map(keymaps.accept, M.accept, function()
    return vim.lsp.inline_completion.get()
  end)
  map(keymaps.accept_word, M.accept_word, nil)
  map(keymaps.accept_line, M.accept_line, nil)
  map(keymaps.dismiss, M.dismiss, nil)
  -- Cycling: Neovim 0.12's own selection where it has one, ours otherwise.
  local select = vim.lsp.inline_completion and vim.lsp.inline_completion.select
  map(keymaps.next, function()
    return M.cycle(1)
  end, select and function()
    select({ count = 1 })
    return true
  end)
  map(keymaps.prev, function()
    return M.cycle(-1)
  end, select and function()
    select({ count = -1 })
    return true
  end)
end

return M
