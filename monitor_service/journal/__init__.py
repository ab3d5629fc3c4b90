"""Where acknowledged rows and labels live: the durable journal behind each model's window.

`jetstream` is cluster mode's journal: every batch is a message in the model's NATS JetStream
stream, acknowledged (replicated) before the 202, and the window is read back from the stream.
"""
