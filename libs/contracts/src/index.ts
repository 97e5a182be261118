// Generated gRPC contracts (ts-proto), one namespace per versioned proto package.
export * as chatv1 from './gen/openrouter/chat/v1/chat';
export * as errorv1 from './gen/openrouter/chat/v1/error';
export * as routerv1 from './gen/openrouter/router/v1/router';
export * as adapterv1 from './gen/openrouter/adapter/v1/adapter';
export * as usagev1 from './gen/openrouter/usage/v1/usage';
export * as budgetv1 from './gen/openrouter/budget/v1/budget';
export * as billingv1 from './gen/openrouter/billing/v1/billing';
