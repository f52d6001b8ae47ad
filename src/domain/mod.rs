//! Pure business types and rules: parsed newtypes, money, the basket. No I/O here.

pub mod carrier;
pub mod cart;
pub mod ids;
pub mod money;
pub mod order;
pub mod parcels;
pub mod payment;
pub mod quantity;
pub mod retry;
pub mod returns;
pub mod saga;
pub mod text;
pub mod webhooks;

pub use carrier::CarrierMode;
pub use cart::{Basket, BasketLine, CartError};
pub use ids::{ProductId, ProductRef, Username};
pub use money::Cents;
pub use order::{
    CompensationRun, OrderId, OrderRecord, OrderStatus, ShippingAddress, Step, StepState,
};
pub use parcels::{ParcelLine, ParcelStatus};
pub use payment::{PaymentState, Settlement};
pub use quantity::Quantity;
pub use retry::RetryConfig;
pub use returns::{
    RefundKind, ReturnId, ReturnItem, ReturnLine, ReturnRefusal, ReturnStatus, price_return,
};
pub use saga::{Compensation, Saga};
pub use text::{DisplayName, Reason, TransactionId};
