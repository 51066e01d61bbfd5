# RabbitMQ tutorial 3 (publish/subscribe), receive_logs.py, unchanged but for the broker
# URL and a flush so the test reads each line as it comes.
import os

import pika

connection = pika.BlockingConnection(pika.URLParameters(os.environ["MESSAGING_BROKER_URL"]))
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

result = channel.queue_declare(queue="", exclusive=True)
queue_name = result.method.queue

channel.queue_bind(exchange="logs", queue=queue_name)

print(" [*] Waiting for logs. To exit press CTRL+C", flush=True)


def callback(ch, method, properties, body):
    print(f" [x] {body}", flush=True)


channel.basic_consume(queue=queue_name, on_message_callback=callback, auto_ack=True)

channel.start_consuming()
