"""Where the tests find the repository and the team's reference split files (../shared/splits)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLITS = REPO.parent / "shared" / "splits"
