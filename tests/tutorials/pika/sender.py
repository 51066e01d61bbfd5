# The RabbitMQ tutorial's sender (../shared/seed/rabbitmq-intro.md), durable version,
# unchanged but for the queue name and broker URL, which the tests pass in.
import os
import sys

import pika

QUEUE = sys.argv[1] if len(sys.argv) > 1 else "q1"
connection = pika.BlockingConnection(pika.URLParameters(os.environ["MESSAGING_BROKER_URL"]))

channel = connection.channel()
channel.queue_declare(queue=QUEUE, durable=True)

channel.basic_publish(
    exchange="",
    routing_key=QUEUE,
    body="Hello World!",
    properties=pika.BasicProperties(
        delivery_mode=2,
    ),
)
print(" [x] Sent 'Hello World!'")
connection.close()
