"""The floor endpoint of bench_action.py: the bare endpoint plus the durability the execution
endpoint owes HubSpot, and nothing else: parse the JSON body, INSERT one row and COMMIT it over the
raw driver (one connection per thread, no pool, no ORM, no signature), then answer 200. The
bench creates the table (FLOOR_TABLE in bench_action.py) before it starts this app.

What AutoSeq's endpoint could reach if everything but the durable row cost nothing: the ratio
floor/bare is the ceiling of ours/bare on the machine that runs it. Not part of the product."""

import json
import os
import sqlite3
import threading

from flask import Flask, jsonify, request

app = Flask(__name__)
BLOCK = {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1D"}}
URL = os.environ["DATABASE_URL"]
INSERT_PG = "INSERT INTO floor_rows (callback_id, body) VALUES (%s, %s)"
INSERT_SQLITE = "INSERT INTO floor_rows (callback_id, body) VALUES (?, ?)"
_local = threading.local()


def connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        if URL.startswith("sqlite:///"):
            conn = sqlite3.connect(URL.removeprefix("sqlite:///"), timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
        else:
            import psycopg

            conn = psycopg.connect(URL)
        _local.conn = conn
    return conn


@app.post("/hubspot/actions/enroll")
def floor_enroll():
    body = request.get_data()
    data = json.loads(body)
    conn = connection()
    insert = INSERT_SQLITE if isinstance(conn, sqlite3.Connection) else INSERT_PG
    conn.execute(insert, (data["callbackId"], body.decode()))
    conn.commit()
    return jsonify(BLOCK)
