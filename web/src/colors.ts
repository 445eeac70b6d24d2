// Badge colours that keep white text at WCAG AA contrast (≥ 4.5:1) in both themes.
export const SEVERITY_COLOR: Record<string, string> = { error: "red.9", warning: "#8f5b00", info: "gray.7" };
export const CHANGE_COLOR: Record<string, string> = { added: "#1e6b2e", removed: "red.9", changed: "#8f5b00" };
export const OK_COLOR = "#1e6b2e";
