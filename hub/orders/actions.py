"""Running the seller's automation rules on an order: conditions, actions, and the record of each run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.orders.kinds import CREATE_SHIPMENT, ISSUE_INVOICE, TO_ERP
from hub.orders.models import Order, RuleRun
from hub.orders.rules import OrderRules
from hub.orders.status import FINAL, RANK, TransitionError, move, path_to

MAX_RULE_DEPTH = 3


def _facts(order: Order) -> dict[str, Any]:
    address = ((order.delivery or {}).get("address") or {})
    payment = order.payment or {}
    return {
        "channel": order.channel, "delivery_method": order.delivery_method,
        "payment_method": payment.get("method"), "cash_on_delivery": bool(payment.get("cash_on_delivery")),
        "country": address.get("country", "PL"), "amount": order.total_gross, "tags": list(order.tags or []),
        "invoice": order.invoice is not None, "business": bool((order.invoice or {}).get("nip")),
    }


def run_rules(session: Session, rules: OrderRules, order: Order, event: str, now: datetime, depth: int = 0) -> None:
    if depth > MAX_RULE_DEPTH:
        return
    for rule in rules.automation.for_event(event):
        ok, _ = rule.when.matches(_facts(order))
        if not ok:
            continue
        done: list[str] = []
        failed = None
        for action in rule.do:
            try:
                follow = _act(session, order, action, rule.name, now)
                done.append(action.action)
            except (TransitionError, ValueError) as exc:
                failed = f"{action.action}: {exc}"
                done.append(f"{action.action} FAILED")
                if rule.on_failure == "stop":
                    break
                continue
            if follow:
                run_rules(session, rules, order, follow, now, depth + 1)
        outcome = "done" if failed is None else ("stopped" if rule.on_failure == "stop" else "failed")
        session.add(RuleRun(order_id=order.id, rule=rule.name, event=event, outcome=outcome,
                            detail="; ".join(done) + (f" ({failed})" if failed else ""), at=now))


def _act(session: Session, order: Order, action: Any, rule: str, now: datetime) -> str | None:
    if action.action == "set_status":
        if order.status == action.status:
            return None
        steps = path_to(order.status, action.status)
        if not steps and order.status not in FINAL and RANK[action.status] < RANK[order.status]:
            return None  # already past it (a paid order the seller shipped at once): the rule is satisfied
        steps = steps or [action.status]
        for step in steps:
            move(session, order, step, f"rule:{rule}"[:30], now)
        return "order.status_changed"
    if action.action == "send_to_erp":
        if order.problem:
            raise ValueError(f"the order is quarantined ({order.problem_kind}); fix it first")
        queue.enqueue(session, TO_ERP, {"order_id": order.id}, key=f"erp-doc:{order.channel}/{order.external_id}")
        return None
    if action.action == "book_shipment":
        if order.problem:
            raise ValueError(f"the order is quarantined ({order.problem_kind}); fix it first")
        # once per order whatever fires the rule again (hub.shipping creates and books the shipment)
        payload: dict[str, Any] = {"order_id": order.id, "source": f"rule:{rule}"[:60]}
        if action.carrier is not None:
            payload |= {"carrier": action.carrier, "service": action.service}
        queue.enqueue(session, CREATE_SHIPMENT, payload, key=f"ship:{order.channel}/{order.external_id}")
        return None
    if action.action == "issue_invoice":
        if order.problem:
            raise ValueError(f"the order is quarantined ({order.problem_kind}); fix it first")
        # once per order whatever fires the rule again (hub.invoicing issues it, numbered, and sends it to KSeF)
        queue.enqueue(session, ISSUE_INVOICE, {"order_id": order.id, "source": f"rule:{rule}"[:60]},
                      key=f"invoice:{order.channel}/{order.external_id}")
        return None
    if action.action == "add_tag":
        if action.tag not in (order.tags or []):
            order.tags = [*(order.tags or []), action.tag]
        return None
    if action.action == "remove_tag":
        order.tags = [t for t in (order.tags or []) if t != action.tag]
        return None
    raise ValueError(f"unknown action {action.action}")
