"""The push server's wing: it runs only in the push server, and nothing on the Django side imports it.

``node`` is the push server; ``adapters`` drive it with python-socketio.
"""
