

def test_the_worker_and_controller_port_serves_the_text_format():
    port = metrics.serve(0, "127.0.0.1")
    assert metrics.serve(0, "127.0.0.1") == port  # one server per process
    metrics.OPERATIONS.labels("tests.port", "SUCCEEDED").inc()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:  # noqa: S310 -- loopback
        text = answer.read().decode()
    assert 'imm_operations_total{kind="tests.port",state="SUCCEEDED"} 1.0' in text
