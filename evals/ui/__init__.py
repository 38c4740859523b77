"""The Results page (leaderboard, figures, per-model history) served inside the Airflow API server by plugins/."""
