"""Domain logic. No Flask request objects here: views and jobs call these."""
