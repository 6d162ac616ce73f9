"""The push server's wing: it runs only in the push server, and nothing on the Django side imports it.

``node`` is the push server's core; ``adapters`` drives it with python-socketio's
``Server`` (eventlet, gevent, threading), ``asgi`` with its ``AsyncServer``, and
``mount`` puts it in an ASGI application beside Django's.
"""
