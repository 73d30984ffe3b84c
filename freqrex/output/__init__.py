"""Everything that writes files or draws: results themselves are plain data.

- ``folders``: output folders that appear whole or not at all.
- ``files``: a Result or AttackResult as a folder (JSON, NumPy, WAV, figure).
- ``figures``: matplotlib figures, drawn on Figure objects and returned.
- ``evaluation``: the data-set report (Markdown, CSV, plots).
"""
