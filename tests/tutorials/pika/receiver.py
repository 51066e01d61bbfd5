# The RabbitMQ tutorial's receiver (../shared/seed/rabbitmq-intro.md), durable version
# with manual acks and prefetch 1, unchanged but for the queue name and broker URL, and
# one extra line printing delivery_mode so the tests can check persistence.
# (The tutorial writes `basic_qos(prefetch=1)`; pika's keyword is prefetch_count.)
import os
import sys

import pika

QUEUE = sys.argv[1] if len(sys.argv) > 1 else "q1"
connection = pika.BlockingConnection(pika.URLParameters(os.environ["MESSAGING_BROKER_URL"]))
channel = connection.channel()
channel.queue_declare(queue=QUEUE, durable=True)


def callback(ch, method, properties, body):
    print(f" [x] Received {body}")
    print(f" [x] delivery_mode={properties.delivery_mode} body_hex={body.hex()}", flush=True)
    ch.basic_ack(delivery_tag=method.delivery_tag)


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue=QUEUE, auto_ack=False, on_message_callback=callback)
channel.start_consuming()
