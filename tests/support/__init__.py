"""What the tests share, imported as `support.<module>` (pytest puts tests/ on the path: `pythonpath`):

- real parts to test against: a throwaway PostgreSQL (`pg`), a Docker engine of the tests' own (`docker`),
  SIPp callers and phones (`sipp`, `dtmf_pcap`, `sipp_scenarios/`, `phones`);
- harnesses: the caller's side of a call on the real Asterisk and the hotline app in the test
  (`harness`), the same with skill routing (`routed_hotline`), `hotline serve` as a subprocess
  (`service_harness`), the deployed compose stack (`deployment`), a scripted Asterisk and a faulty
  link for the FastAGI server (`agi`);
- builders of plain values: `routing_helpers`, `switchboard_helpers`, `api_helpers`, `big_flow`;
- scripts a test runs as a process and kills: `writer_process`, `callback_crash`;
- the shared fixtures, as pytest plugins (`fixtures`), and where the repository's files are (`paths`).

None of it ships: the `hotline` distribution holds the product only. The benchmarks in bench/ use `pg`.
"""
