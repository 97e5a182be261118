import type { Logger } from '@openrouter/observability';
import type { AlertingService } from '../alerting.service';
import type { AlertingStateRepository } from '../state/alerting-state.repository';
import type { DeliveryQueue } from './delivery-queue';

/**
 * Queues the notifications a stopped replica handed over (with `retake`, also those a previous
 * active replica had taken and not finished), as many as the delivery queue has room for: more
 * would push out what it holds (this replica's own notifications, or handed-over ones, which would
 * then be lost), so the rest wait in Redis for a later round. Each is removed from Redis once its
 * delivery has an outcome, and those of a channel no longer configured at once. False when Redis
 * could not be read.
 */
export async function sendHandedOver(
  state: Pick<AlertingStateRepository, 'claimHandedOver' | 'finishHandedOver'>,
  service: AlertingService,
  delivery: DeliveryQueue,
  logger: Logger,
  retake: boolean,
  finishing: Set<Promise<void>>,
): Promise<boolean> {
  let handed;
  try {
    handed = await state.claimHandedOver({ retake, limit: delivery.room });
  } catch (error) {
    logger.warn({ err: error }, 'alert notifications handed over by a stopped replica could not be read from Redis; trying again');
    return false;
  }
  if (handed.length === 0) return true;
  const finish = (receipt: string): void => {
    const removed = state
      .finishHandedOver(receipt)
      .catch((error: unknown) => logger.warn({ err: error }, 'a handed-over alert notification could not be removed from Redis: the next active replica may send it again'))
      .finally(() => finishing.delete(removed));
    finishing.add(removed);
  };
  let queued = 0;
  for (const { channel, notification, receipt } of handed) {
    if (service.deliverHandedOver(channel, notification, () => finish(receipt))) queued++;
    else finish(receipt);
  }
  logger.info({ queued, skipped: handed.length - queued }, 'alert notifications handed over by a stopped replica queued for delivery');
  return true;
}
