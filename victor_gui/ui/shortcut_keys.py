"""Key sequences named once and used by more than one view (the menu action and a tooltip)."""

# Compare side by side: opens compare from the chat, adds a pane in compare.
SPLIT_KEY = "Ctrl+\\"
