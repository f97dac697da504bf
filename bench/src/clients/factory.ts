/** Makes the subscriber that speaks a target's wire, from the spec the target gives. */
import { AmqpMember } from './amqp-member.js';
import { JetStreamMember } from './jetstream-member.js';
import { JetStreamSubscriber } from './jetstream-subscriber.js';
import { NatsSubscriber } from './nats-subscriber.js';
import { PlainSubscriber } from './plain-subscriber.js';
import { SluiceMember } from './sluice-member.js';
import { SluiceSubscriber } from './sluice-subscriber.js';
import { SocketIoSubscriber } from './socketio-subscriber.js';
import type { Sink, Subscriber, SubscriberSpec } from './subscriber.js';

export function createSubscriber(spec: SubscriberSpec, topic: number | null, sink: Sink): Subscriber {
  switch (spec.kind) {
    case 'sluice': return new SluiceSubscriber(spec, topic, sink);
    case 'plain': return new PlainSubscriber(spec, topic, sink);
    case 'socketio': return new SocketIoSubscriber(spec, topic, sink);
    case 'nats': return new NatsSubscriber(spec, topic, sink);
    case 'jetstream': return new JetStreamSubscriber(spec, topic, sink);
    case 'sluice-group': return new SluiceMember(spec, topic, sink);
    case 'amqp': return new AmqpMember(spec, topic, sink);
    case 'jetstream-queue': return new JetStreamMember(spec, topic, sink);
  }
}
