"""The ``hookway`` command line: forward webhooks to a local app (``listen``), send signed
test webhooks (``send``), and tail, show and replay events over the operator API.

It talks HTTP to a running Hookway only, and never imports Django (a developer's laptop
runs it against a Hookway somewhere else): the modules it uses from the rest of the
package (hookway.signers, hookway.inbound, hookway.headers, hookway.secrets) are plain
Python. docs/cli.md is its manual."""
