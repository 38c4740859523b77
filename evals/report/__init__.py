"""What people read: the HTML report, its figures and the text tables of the CLI and the demo."""
