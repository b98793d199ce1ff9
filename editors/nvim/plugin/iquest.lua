-- Nothing starts until require("iquest").setup{} is called (see editors/nvim/README.md).
if vim.g.loaded_iquest then
  return
end
vim.g.loaded_iquest = true
