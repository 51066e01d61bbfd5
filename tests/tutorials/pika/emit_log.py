# RabbitMQ tutorial 3 (publish/subscribe), emit_log.py, unchanged but for the broker URL.
import os
import sys

import pika

connection = pika.BlockingConnection(pika.URLParameters(os.environ["MESSAGING_BROKER_URL"]))
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

message = " ".join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange="logs", routing_key="", body=message)
print(f" [x] Sent {message}")
connection.close()
