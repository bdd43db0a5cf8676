"""The bare endpoint of bench_action.py: a Flask app whose only route answers 200 with the same
JSON as the execution endpoint, doing nothing else. Served by gunicorn exactly like ``wsgi:app``.
Not part of the product."""

from flask import Flask, jsonify

app = Flask(__name__)
BLOCK = {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}}


@app.post("/hubspot/actions/enroll")
def bare_enroll():
    return jsonify(BLOCK)
