"""The Results page (leaderboard, trends) served inside the Airflow API server by the plugin in plugins/."""
