"""The test kit's real Redis and PostgreSQL servers start on loopback and answer."""

from __future__ import annotations

import socket

import psycopg
import redis


def test_redis_server_answers_on_loopback_only(redis_server):
    client = redis.Redis.from_url(redis_server.url_for(1))
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    assert client.config_get("bind")["bind"] == "127.0.0.1"


def test_postgres_server_runs_sql_on_loopback(postgres_server):
    dsn = postgres_server.create_database("services_check")
    with psycopg.connect(dsn) as connection:
        (answer,) = connection.execute("SELECT 6 * 7").fetchone()
        (listen,) = connection.execute("SHOW listen_addresses").fetchone()
    assert answer == 42
    assert listen == "127.0.0.1"


def test_servers_use_distinct_free_ports(redis_server, postgres_server):
    assert redis_server.port != postgres_server.port
    for port in (redis_server.port, postgres_server.port):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
