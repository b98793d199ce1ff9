// Explanations arrive as an `iquest/explanation` notification (the daemon sends it instead of
// opening a document when the client says it renders them) and open in a markdown preview.
import * as vscode from "vscode";
import type { ExplanationParams } from "./protocol";

// What the daemon sends (protocol.ExplanationParams); range is optional for older daemons.
export type ExplanationPayload = Omit<ExplanationParams, "range"> & { range?: ExplanationParams["range"] };

export function explanationMarkdown(payload: ExplanationPayload): string {
  const file = decodeURIComponent(payload.uri.split("/").pop() ?? payload.uri);
  const where = payload.range
    ? `${file}, lines ${payload.range.start.line + 1}-${payload.range.end.line + 1}`
    : file;
  const heading =
    payload.kind === "ask" && payload.question ? `Q: ${payload.question}` : `Explanation: ${where}`;
  const context = payload.kind === "ask" ? `\n\n*${where}*` : "";
  return `# ${heading}${context}\n\n${payload.markdown}\n`;
}

export async function showExplanation(payload: ExplanationPayload): Promise<vscode.TextDocument> {
  const document = await vscode.workspace.openTextDocument({
    language: "markdown",
    content: explanationMarkdown(payload),
  });
  await vscode.commands.executeCommand("markdown.showPreviewToSide", document.uri);
  return document;
}
