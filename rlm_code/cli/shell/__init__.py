"""The interactive shell (`rlm-code` with no command), in parts:

- `loop`: the `Shell` class (read a line, chat or run a command) and `run`, the entry point;
- `names`: the slash-command names and the interruption marker (shared, import-free);
- `commands`: the slash commands; `connect`: `/connect` and the picker flow;
  `discovery`: local-server and ACP-agent discovery read defensively; `picker`: the menu;
- `line_editor`: readline, completion and the history file; `history`: what a line may keep
  before it is stored or shown (keys and URL credentials masked);
- `startup`: how the first connection is chosen and opened on a background thread.

This package file imports nothing, so that importing `loop` loads only what the first prompt
needs.
"""
