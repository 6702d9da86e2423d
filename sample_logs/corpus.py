"""Seeded text vocabulary for the sample logs: system prompts, user messages and model answers.

Everything here is a pure function of the `random.Random` passed in, so `generate.py` stays byte-for-byte
reproducible. Texts are assembled from hand-written sentence templates about a fictional SaaS company
("Northwind Cloud", an inventory and order-management product) so that prompts read like real traffic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

COMPANY = "Northwind Cloud"
PLANS = ("Starter", "Team", "Business", "Enterprise")
PRODUCT_AREAS = (
    "inventory sync",
    "purchase orders",
    "barcode scanning",
    "the Shopify connector",
    "warehouse transfers",
    "low-stock alerts",
    "the reporting dashboard",
    "user roles",
    "SSO",
    "the REST API",
    "CSV imports",
    "invoice exports",
    "multi-currency pricing",
    "the mobile app",
    "webhooks",
    "bundles and kits",
)
COUNTRIES = ("Germany", "the United States", "the United Kingdom", "France", "Canada", "the Netherlands", "Spain")
FIRST_NAMES = ("Dana", "Luis", "Priya", "Tom", "Mei", "Jonas", "Aisha", "Marco", "Sofia", "Kenji", "Olga", "Sam")


def pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[rng.randrange(len(items))]


# --------------------------------------------------------------------------------------------------
# Long system prompts (built once per run; their length is what makes the caching findings matter)
# --------------------------------------------------------------------------------------------------

_POLICY_TOPICS = (
    (
        "Annual leave",
        "Full-time employees accrue {n} days of paid annual leave per calendar year, pro-rated "
        "for part-time contracts and for the first year of employment.",
    ),
    (
        "Sick leave",
        "Employees who are unwell must notify their manager before the start of their shift; a "
        "doctor's note is required after {n} consecutive days of absence.",
    ),
    (
        "Parental leave",
        "Primary caregivers receive {n} weeks of fully paid parental leave and secondary "
        "caregivers receive {m} weeks, both available within the first year after birth or adoption.",
    ),
    (
        "Remote work",
        "Employees may work remotely up to {n} days per week with their manager's agreement; "
        "working from another country for more than {m} days requires approval from People Operations.",
    ),
    (
        "Travel and expenses",
        "Business travel must be booked through the travel portal at least {n} days in "
        "advance; hotel costs above {amount} per night need written approval from a director.",
    ),
    (
        "Equipment",
        "Laptops are refreshed every {n} years; lost or stolen devices must be reported to the "
        "IT service desk within {m} hours so that the device can be wiped remotely.",
    ),
    (
        "Information security",
        "Customer data may only be stored in approved systems; exporting customer "
        "records to personal devices or personal e-mail accounts is never permitted.",
    ),
    (
        "Code of conduct",
        "We expect everyone to treat colleagues, customers and partners with respect; "
        "harassment or discrimination of any kind is grounds for disciplinary action.",
    ),
    (
        "Gifts and hospitality",
        "Gifts from suppliers or customers worth more than {amount} must be declared "
        "in the gifts register within {n} working days.",
    ),
    (
        "Performance reviews",
        "Performance conversations take place twice a year, in {month1} and {month2}; "
        "goals are agreed in writing and reviewed at every check-in.",
    ),
    (
        "Learning budget",
        "Each employee has an annual learning budget of {amount} for courses, books and "
        "conferences that relate to their role.",
    ),
    (
        "Overtime",
        "Hourly employees are paid overtime at {rate} times the base rate for hours above the "
        "contracted weekly hours, and overtime must be approved in advance.",
    ),
    (
        "Whistleblowing",
        "Concerns about fraud, safety or legal violations can be raised anonymously through "
        "the ethics hotline; retaliation against anyone who raises a concern in good faith is prohibited.",
    ),
    (
        "Data retention",
        "Personnel files are kept for {n} years after the end of employment and are then "
        "deleted, unless a longer period is required by local law.",
    ),
    (
        "Company holidays",
        "Public holidays follow the calendar of the country in which the employee is "
        "contracted; the office closes between {month2} 24 and January 1.",
    ),
    (
        "Probation",
        "New employees serve a probation period of {n} months, during which either side may end "
        "the contract with {m} weeks' notice.",
    ),
    (
        "Pension",
        "The company matches pension contributions up to {n} percent of base salary from the first "
        "month of employment.",
    ),
    (
        "Relocation",
        "Employees relocating at the company's request receive a relocation allowance of up to "
        "{amount} and up to {n} nights of temporary accommodation.",
    ),
)

_POLICY_CLAUSES = (
    "Managers are responsible for applying this policy consistently across their teams.",
    "Where local law grants more generous terms, local law always takes precedence over this handbook.",
    "Requests must be submitted through the People portal so that there is an auditable record.",
    "Exceptions can only be granted by the VP of People Operations and must be documented in writing.",
    "Employees in {country} should also read the country supplement, which lists statutory differences.",
    "If the request affects customer commitments, the manager must confirm cover before approving it.",
    "Unused entitlement does not carry over into the next year unless the local supplement says otherwise.",
    "Questions about payroll treatment should be directed to the payroll team rather than to managers.",
    "This section was last reviewed by the legal team in {month1} 2026.",
    "Contractors and agency staff are covered by their own agreements and not by this section.",
    "Approvals older than ninety days must be renewed before the arrangement can continue.",
    "All figures are gross amounts and are subject to the applicable tax and social security rules.",
)

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        n=rng.choice((2, 3, 5, 10, 14, 20, 25, 30)),
        m=rng.choice((2, 4, 6, 8, 12)),
        amount=rng.choice(("EUR 150", "USD 200", "EUR 1,000", "USD 2,500", "EUR 5,000")),
        rate=rng.choice(("1.25", "1.5", "2")),
        month1=pick(rng, _MONTHS[:6]),
        month2="December",
        country=pick(rng, COUNTRIES),
    )


def policy_handbook(rng: random.Random, min_words: int) -> str:
    """An HR/compliance assistant system prompt with a long policy handbook (about 1.3 tokens per word)."""
    parts = [
        f"You are Atlas, the internal HR and compliance assistant for {COMPANY}. Answer employees' questions "
        "using only the policy handbook below. Quote the section title you rely on. If the handbook does not "
        "answer the question, say so and suggest contacting People Operations at people@northwind.example. "
        "Never give legal advice and never speculate about individual cases.",
        "",
        "POLICY HANDBOOK (version 2026.3)",
    ]
    words = sum(len(p.split()) for p in parts)
    section = 0
    while words < min_words:
        title, body = _POLICY_TOPICS[section % len(_POLICY_TOPICS)]
        section += 1
        clauses = [_fill(rng, body)] + [_fill(rng, c) for c in rng.sample(_POLICY_CLAUSES, 4)]
        text = f"\n{section}. {title}\n" + " ".join(clauses)
        parts.append(text)
        words += len(text.split())
    return "\n".join(parts)


_INSIGHT_RULES = (
    "Always compare the current period with the previous period of equal length and state the change in percent.",
    "Round currency values to whole units and percentages to one decimal place.",
    "When stock cover falls below {n} days for a top-selling SKU, flag it as a risk and name the SKU.",
    "Do not invent numbers: every figure you mention must appear in the data provided by the user.",
    "Group slow-moving items by warehouse and mention the three with the highest tied-up capital.",
    "If return rates exceed {n} percent for a product category, recommend checking supplier quality.",
    "Use the customer's currency and date format as given in the account settings block.",
    "Keep the executive summary under {m} sentences, followed by at most five bullet points.",
    "Mention seasonality only when at least two years of history are available for the metric.",
    "When purchase orders are overdue by more than {m} days, list the supplier and the order numbers.",
    "Explain forecast changes in plain language; avoid statistical jargon such as heteroscedasticity.",
    "If the data is incomplete for the requested period, say which days are missing before analysing.",
    "Refer to warehouses by their display name, not by their internal identifier.",
    "Never recommend discounting below the minimum margin configured for the account.",
)


_INSIGHT_NOTES = (
    "This matters most for accounts with more than one warehouse.",
    "Account owners told us this is the first thing they look for.",
    "If in doubt, leave the point out rather than guess.",
    "State the time window you used in brackets.",
    "Use the SKU display names from the snapshot.",
    "This rule overrides any formatting preference in the question.",
)


def insights_instructions(rng: random.Random, min_words: int) -> str:
    """Analyst instructions for the account-insights feature (the timestamp line is added per request)."""
    parts = [
        f"You are the {COMPANY} account insights analyst. You receive a JSON snapshot of a customer's "
        "inventory and order metrics and a question from the account owner. Write a concise, accurate "
        "analysis that a busy operations manager can act on.",
        "",
        "RULES",
    ]
    words = sum(len(p.split()) for p in parts)
    i = 0
    while words < min_words:
        rule = _fill(rng, _INSIGHT_RULES[i % len(_INSIGHT_RULES)])
        i += 1
        line = f"{i}. {rule} {pick(rng, _INSIGHT_NOTES)}"
        parts.append(line)
        words += len(line.split())
    parts += ["", "OUTPUT FORMAT", "Summary paragraph, then 'Risks:' and 'Recommended actions:' bullet lists."]
    return "\n".join(parts)


_REVIEW_GUIDELINES = (
    ("Correctness", "Check boundary conditions, off-by-one errors and the handling of empty collections."),
    ("Error handling", "Exceptions must not be swallowed; log them with context and re-raise or convert."),
    ("Security", "Flag string-built SQL, unchecked redirects, secrets in code and missing authorization checks."),
    ("Performance", "Look for N+1 queries, unbounded loops over user input and missing pagination."),
    ("Concurrency", "Shared mutable state needs a lock or must be confined to one worker."),
    ("Testing", "New behaviour needs a test that fails without the change; prefer table-driven tests."),
    ("Naming", "Names should say what a value means, not how it is computed."),
    ("API design", "Public endpoints need versioning, idempotency keys for writes and documented errors."),
    ("Observability", "New code paths should emit a metric or structured log line with the tenant id."),
    ("Migrations", "Database migrations must be backwards compatible with the previous application version."),
    ("Dependencies", "New third-party packages need a license check and a pinned version."),
    ("Documentation", "User-visible changes need a changelog entry and, if relevant, an updated help article."),
)


def review_guidelines(rng: random.Random, min_words: int) -> str:
    parts = [
        f"You are a senior engineer reviewing pull requests for the {COMPANY} monorepo (Python services, "
        "TypeScript front end, PostgreSQL). Review the diff the user sends. Report only real problems, most "
        "important first, each with the file and line, why it matters and a concrete fix. If the change is "
        "fine, say so in one sentence.",
        "",
        "REVIEW CHECKLIST",
    ]
    words = sum(len(p.split()) for p in parts)
    i = 0
    while words < min_words:
        title, body = _REVIEW_GUIDELINES[i % len(_REVIEW_GUIDELINES)]
        i += 1
        extra = pick(
            rng,
            (
                "Point to the exact line and propose the smallest safe change.",
                "Do not comment on formatting; the linters handle it.",
                "Prefer suggestions that keep the public interface unchanged.",
                "If unsure, ask a question instead of asserting a bug.",
                "Mention the risk level: low, medium or high.",
            ),
        )
        line = f"- {title} ({i}): {body} {extra}"
        parts.append(line)
        words += len(line.split())
    return "\n".join(parts)


_TABLES = (
    (
        "customers",
        (
            "customer_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT NOT NULL",
            "name TEXT",
            "country CHAR(2)",
            "plan TEXT",
            "created_at TIMESTAMPTZ",
        ),
    ),
    (
        "products",
        (
            "product_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT NOT NULL",
            "sku TEXT UNIQUE",
            "title TEXT",
            "category TEXT",
            "unit_cost NUMERIC(12,2)",
            "list_price NUMERIC(12,2)",
            "is_active BOOLEAN",
        ),
    ),
    (
        "warehouses",
        (
            "warehouse_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT NOT NULL",
            "display_name TEXT",
            "country CHAR(2)",
            "timezone TEXT",
        ),
    ),
    (
        "stock_levels",
        (
            "warehouse_id BIGINT REFERENCES warehouses",
            "product_id BIGINT REFERENCES products",
            "on_hand INTEGER",
            "reserved INTEGER",
            "reorder_point INTEGER",
            "updated_at TIMESTAMPTZ",
        ),
    ),
    (
        "orders",
        (
            "order_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT NOT NULL",
            "customer_id BIGINT REFERENCES customers",
            "channel TEXT",
            "status TEXT",
            "currency CHAR(3)",
            "total_amount NUMERIC(12,2)",
            "ordered_at TIMESTAMPTZ",
            "shipped_at TIMESTAMPTZ",
        ),
    ),
    (
        "order_lines",
        (
            "order_id BIGINT REFERENCES orders",
            "line_no INTEGER",
            "product_id BIGINT REFERENCES products",
            "quantity INTEGER",
            "unit_price NUMERIC(12,2)",
            "discount NUMERIC(5,2)",
        ),
    ),
    (
        "returns",
        (
            "return_id BIGINT PRIMARY KEY",
            "order_id BIGINT REFERENCES orders",
            "product_id BIGINT",
            "quantity INTEGER",
            "reason TEXT",
            "received_at TIMESTAMPTZ",
        ),
    ),
    (
        "suppliers",
        (
            "supplier_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT NOT NULL",
            "name TEXT",
            "lead_time_days INTEGER",
            "country CHAR(2)",
        ),
    ),
    (
        "purchase_orders",
        (
            "po_id BIGINT PRIMARY KEY",
            "supplier_id BIGINT REFERENCES suppliers",
            "warehouse_id BIGINT REFERENCES warehouses",
            "status TEXT",
            "expected_at DATE",
            "created_at TIMESTAMPTZ",
        ),
    ),
    (
        "purchase_order_lines",
        ("po_id BIGINT REFERENCES purchase_orders", "product_id BIGINT", "quantity INTEGER", "unit_cost NUMERIC(12,2)"),
    ),
    (
        "transfers",
        (
            "transfer_id BIGINT PRIMARY KEY",
            "from_warehouse BIGINT",
            "to_warehouse BIGINT",
            "product_id BIGINT",
            "quantity INTEGER",
            "status TEXT",
            "created_at TIMESTAMPTZ",
        ),
    ),
    (
        "invoices",
        (
            "invoice_id BIGINT PRIMARY KEY",
            "order_id BIGINT REFERENCES orders",
            "number TEXT",
            "issued_at DATE",
            "due_at DATE",
            "paid_at DATE",
            "amount NUMERIC(12,2)",
        ),
    ),
    (
        "shipments",
        (
            "shipment_id BIGINT PRIMARY KEY",
            "order_id BIGINT REFERENCES orders",
            "carrier TEXT",
            "tracking_number TEXT",
            "shipped_at TIMESTAMPTZ",
            "delivered_at TIMESTAMPTZ",
        ),
    ),
    (
        "events",
        (
            "event_id BIGINT PRIMARY KEY",
            "tenant_id BIGINT",
            "user_id BIGINT",
            "kind TEXT",
            "payload JSONB",
            "created_at TIMESTAMPTZ",
        ),
    ),
)


def sql_system_prompt() -> str:
    ddl = "\n".join(f"CREATE TABLE {name} (\n  " + ",\n  ".join(cols) + "\n);" for name, cols in _TABLES)
    return (
        f"You translate questions from {COMPANY} analysts into a single PostgreSQL 16 query over the warehouse "
        "schema below. Always filter by tenant_id = :tenant_id. Use explicit JOINs, ISO dates and CTEs for "
        "readability. Return the SQL in a ```sql block followed by one sentence explaining what it returns. "
        "If the question cannot be answered from this schema, say which data is missing.\n\n"
        "Every monetary column is in the order currency; convert with the fx_rates view when the question "
        "asks for totals across currencies (fx_rates(currency CHAR(3), day DATE, rate_to_eur NUMERIC)). "
        "Timestamps are stored in UTC; use the warehouse timezone for per-day questions about a warehouse. "
        "Soft-deleted rows do not exist in this replica. Prefer window functions over self-joins.\n\nSCHEMA\n"
        + ddl
        + "\n\nEXAMPLES\n"
        + "\n\n".join(f"Q: {q}\nA:\n```sql\n{a}\n```" for q, a in _SQL_EXAMPLES)
    )


_SQL_EXAMPLES = (
    (
        "How many orders did we ship per channel last week?",
        "SELECT channel, COUNT(*) AS orders\nFROM orders\nWHERE tenant_id = :tenant_id\n  AND shipped_at >= "
        "date_trunc('week', now()) - INTERVAL '7 days'\n  AND shipped_at < date_trunc('week', now())\n"
        "GROUP BY channel\nORDER BY orders DESC;",
    ),
    (
        "Which products are below their reorder point in any warehouse?",
        "SELECT p.sku, p.title, w.display_name, s.on_hand - s.reserved AS available, s.reorder_point\n"
        "FROM stock_levels s\nJOIN products p ON p.product_id = s.product_id\n"
        "JOIN warehouses w ON w.warehouse_id = s.warehouse_id\nWHERE p.tenant_id = :tenant_id\n"
        "  AND s.on_hand - s.reserved < s.reorder_point\nORDER BY available;",
    ),
    (
        "What is the return rate by product category in the last 90 days?",
        "WITH sold AS (\n  SELECT p.category, SUM(l.quantity) AS qty\n  FROM order_lines l\n"
        "  JOIN orders o ON o.order_id = l.order_id\n  JOIN products p ON p.product_id = l.product_id\n"
        "  WHERE o.tenant_id = :tenant_id AND o.ordered_at >= now() - INTERVAL '90 days'\n  GROUP BY p.category\n"
        "), returned AS (\n  SELECT p.category, SUM(r.quantity) AS qty\n  FROM returns r\n"
        "  JOIN products p ON p.product_id = r.product_id\n"
        "  WHERE p.tenant_id = :tenant_id AND r.received_at >= now() - INTERVAL '90 days'\n  GROUP BY p.category\n)\n"
        "SELECT s.category, ROUND(100.0 * COALESCE(r.qty, 0) / NULLIF(s.qty, 0), 1) AS return_rate_pct\n"
        "FROM sold s LEFT JOIN returned r USING (category)\nORDER BY return_rate_pct DESC;",
    ),
    (
        "Which suppliers have overdue purchase orders?",
        "SELECT su.name, po.po_id, po.expected_at, now()::date - po.expected_at AS days_overdue\n"
        "FROM purchase_orders po\nJOIN suppliers su ON su.supplier_id = po.supplier_id\n"
        "WHERE su.tenant_id = :tenant_id AND po.status = 'open' AND po.expected_at < now()::date\n"
        "ORDER BY days_overdue DESC;",
    ),
)


def contract_text(rng: random.Random, customer: str, min_words: int) -> str:
    clauses = (
        (
            "Term",
            "This Agreement starts on the Effective Date and continues for {n} months, renewing "
            "automatically for successive twelve-month periods unless either party gives {m} weeks' notice.",
        ),
        (
            "Fees",
            "Customer shall pay the subscription fees in the Order Form annually in advance; fees are "
            "exclusive of taxes and increase by no more than {n} percent per renewal.",
        ),
        (
            "Service levels",
            "Provider shall make the Service available 99.9 percent of each calendar month; "
            "service credits of {n} percent of the monthly fee apply for each 0.1 percent below the target.",
        ),
        (
            "Data protection",
            "Provider processes Customer Personal Data only on documented instructions and "
            "notifies Customer of a personal data breach within {m} hours of becoming aware of it.",
        ),
        (
            "Confidentiality",
            "Each party keeps the other's Confidential Information secret for {n} years after "
            "termination and uses it only to perform this Agreement.",
        ),
        (
            "Liability",
            "Except for breaches of confidentiality, each party's aggregate liability is capped at "
            "the fees paid in the {m} months preceding the claim.",
        ),
        (
            "Termination",
            "Either party may terminate for material breach not cured within {n} days of written "
            "notice; on termination Provider makes Customer Data available for export for {m} weeks.",
        ),
        (
            "Subprocessors",
            "Provider maintains a list of subprocessors and gives {n} days' notice of any "
            "addition, during which Customer may object on reasonable data-protection grounds.",
        ),
        (
            "Audit",
            "Customer may audit Provider's compliance once per year with {m} weeks' notice, at "
            "Customer's cost, during normal business hours.",
        ),
        (
            "Governing law",
            "This Agreement is governed by the laws of {country} and the courts of its capital "
            "have exclusive jurisdiction.",
        ),
    )
    parts = [f'MASTER SUBSCRIPTION AGREEMENT between {COMPANY} GmbH ("Provider") and {customer} ("Customer")']
    words = len(parts[0].split())
    i = 0
    while words < min_words:
        title, body = clauses[i % len(clauses)]
        i += 1
        text = f"{i}. {title}. {_fill(rng, body)} {_fill(rng, pick(rng, _POLICY_CLAUSES[:4]))}"
        parts.append(text)
        words += len(text.split())
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Short system prompts
# --------------------------------------------------------------------------------------------------

TICKET_CATEGORIES = ("billing", "bug", "account_access", "feature_request", "shipping", "cancellation", "other")

CLASSIFIER_SYSTEM = (
    f'You classify {COMPANY} support tickets. Reply with a JSON object {{"category": <one of: '
    + ", ".join(TICKET_CATEGORIES)
    + '>}. Use "other" only when no category fits. Do not explain your answer.'
)

HELP_SYSTEM = (
    f"You are the {COMPANY} help-center assistant. Answer customer questions about the product in a friendly, "
    "concise way (at most three short paragraphs). Link to help articles as /help/<slug> when relevant. If the "
    "question is about a specific account, ask the customer to contact support@northwind.example."
)

KB_SYSTEM = (
    f"You are a product expert for {COMPANY}. Use the knowledge-base excerpts provided in the user message to "
    "answer the question thoroughly. Explain the reasoning, describe each configuration step, mention related "
    "settings the user may want to change, and include examples. Be complete rather than brief."
)

SUMMARIZER_SYSTEM = (
    "Summarize the e-mail thread for the account manager: who wants what, what was agreed, open questions and "
    "the next step with its owner. Use at most five bullet points."
)

DIGEST_INSTRUCTIONS = (
    f"You write the nightly activity digest e-mail for a {COMPANY} user. Given yesterday's events as a list, "
    "write a short greeting with the user's first name, then group the events into Orders, Inventory and Team, "
    "highlighting anything that needs action today. Plain text, no more than 150 words."
)

RESEARCH_INSTRUCTIONS = (
    f"You are a market research assistant for {COMPANY}'s strategy team. Investigate the question carefully, "
    "consider several angles, and write a structured memo with findings, uncertainties and a recommendation."
)

SUPPORT_CHAT_SYSTEM = (
    f"You are Nova, the live-chat support agent for {COMPANY}. Be warm and precise. Troubleshoot step by step, "
    "ask one question at a time, and confirm each step worked before moving on. You can see the customer's plan "
    "and region in the conversation context. Escalate to a human (say 'I'm handing this to a colleague') if the "
    "customer asks for a refund above USD 500, mentions a legal matter, or is still blocked after ten exchanges. "
    "Never ask for passwords or full card numbers."
)

ARENA_SYSTEM = "You are a helpful assistant. Answer accurately and clearly."

NIGHTLY_BATCH_SYSTEM = (
    "Summarize this support ticket for the weekly quality review in three sentences: the problem, what the "
    "agent did, and whether the customer's issue was resolved."
)

# --------------------------------------------------------------------------------------------------
# User messages and answers
# --------------------------------------------------------------------------------------------------

_TICKETS = {
    "billing": (
        "Hi, I was charged twice for our {plan} subscription this month (invoice {inv}). Can you refund the "
        "duplicate charge?",
        "Our invoice {inv} shows {seats} seats but we only have {seats2} active users. Please correct the bill.",
        "The card on file expired and now the account says payment failed. How do I update it without losing data?",
        "Can we switch from monthly to annual billing on the {plan} plan and get the discount applied this month?",
    ),
    "bug": (
        "Since this morning {area} shows the wrong quantities for about {n} SKUs in warehouse {wh}. Please help!",
        "When I export invoices to CSV the dates come out in US format even though our locale is {country}.",
        "The mobile app crashes every time I scan a barcode on the receiving screen (iOS 19, app version 7.{n}).",
        "{area} stopped working after yesterday's update, we get error 502 on every attempt.",
    ),
    "account_access": (
        "I can't log in anymore, the SSO page just loops back to the login screen. User is {name}@{tenant}.example.",
        "Our admin left the company and nobody can manage user roles now. How can we regain admin access?",
        "I never received the password reset e-mail, I've tried three times today.",
    ),
    "feature_request": (
        "It would be great if {area} could handle bundles with more than {n} components.",
        "Could you add a way to schedule transfers between warehouses in advance? We do this every Monday.",
        "Please add a Slack notification for low-stock alerts, e-mail is too slow for our team.",
    ),
    "shipping": (
        "Order {order} was marked as shipped but the tracking number doesn't work with the carrier.",
        "The shipping labels for {country} are printing with the wrong customs form since last week.",
    ),
    "cancellation": (
        "We'd like to cancel our {plan} plan at the end of the current term. What do we need to do?",
        "Please close our account, we moved to another system. Can we get an export of all our data first?",
    ),
    "other": (
        "Do you have an office in {country}? Our procurement team wants to know for the vendor form.",
        "Who should I contact about a partnership with {company}?",
    ),
}


def ticket(rng: random.Random, tenant: str) -> tuple[str, str]:
    """A support ticket text and its true category."""
    category = pick(rng, TICKET_CATEGORIES[:-1]) if rng.random() < 0.93 else "other"
    text = pick(rng, _TICKETS[category]).format(
        plan=pick(rng, PLANS),
        inv=f"INV-2026-{rng.randrange(10000, 99999)}",
        seats=rng.randrange(20, 60),
        seats2=rng.randrange(5, 19),
        area=pick(rng, PRODUCT_AREAS),
        n=rng.randrange(3, 40),
        wh=pick(rng, ("Hamburg", "Leeds", "Reno", "Lyon", "Toronto")),
        country=pick(rng, COUNTRIES),
        name=pick(rng, FIRST_NAMES).lower(),
        tenant=tenant,
        order=f"SO-{rng.randrange(100000, 999999)}",
        company=COMPANY,
    )
    return text, category


FAQ = (
    (
        "How do I reset my password?",
        "password-reset",
        "Click 'Forgot password' on the sign-in page and enter your work e-mail. You will receive a reset link "
        "that is valid for 30 minutes. If your company uses SSO, reset the password with your identity provider.",
    ),
    (
        "How do I add a new user to my account?",
        "invite-users",
        "Go to Settings > Users and click 'Invite user'. Enter their e-mail address and choose a role. The invite "
        "expires after 7 days; you can resend it from the same page.",
    ),
    (
        "Can I import products from a CSV file?",
        "csv-import",
        "Yes. Go to Products > Import, download the template, fill in SKU, title and price, and upload it. Up to "
        "50,000 rows are processed per file, and you get an e-mail report when the import finishes.",
    ),
    (
        "How do I connect my Shopify store?",
        "shopify",
        "Open Integrations > Shopify, click 'Connect' and approve the app in Shopify. Products and stock levels "
        "start syncing within a few minutes; orders sync every five minutes.",
    ),
    (
        "What is the difference between the Team and Business plans?",
        "plans",
        "Business adds multiple warehouses, purchase orders, user roles and API access with higher limits. Team "
        "covers one warehouse and up to 10 users. You can compare all features on /help/plans.",
    ),
    (
        "How do I set up low-stock alerts?",
        "low-stock-alerts",
        "Set a reorder point on each product (or in bulk via import). When available stock drops below it, we "
        "send an alert by e-mail and show it on the dashboard.",
    ),
    (
        "Where can I download my invoices?",
        "invoices",
        "Account owners find all invoices under Settings > Billing > Invoices, as PDF or CSV.",
    ),
    (
        "How do I cancel my subscription?",
        "cancel",
        "Account owners can cancel under Settings > Billing > Plan. Your data stays available until the end of the "
        "paid term, and you can export it at any time before then.",
    ),
    (
        "Does Northwind Cloud support barcode scanners?",
        "barcode-scanners",
        "Yes. Any USB or Bluetooth scanner that works as a keyboard is supported, and the mobile app can scan "
        "with the phone camera.",
    ),
    (
        "How do I transfer stock between warehouses?",
        "transfers",
        "Go to Inventory > Transfers, choose the source and destination warehouse, add products and quantities, "
        "and confirm. Stock is reserved at the source until the transfer is received.",
    ),
    (
        "Is there an API?",
        "api",
        "Yes, a REST API is available on the Business and Enterprise plans. Create an API key under Settings > API "
        "and see /help/api for endpoints and rate limits.",
    ),
    (
        "How do I enable two-factor authentication?",
        "2fa",
        "Open your profile, choose Security and turn on two-factor authentication. Scan the QR code with an "
        "authenticator app and enter the six-digit code to confirm.",
    ),
    (
        "Can I use multiple currencies?",
        "currencies",
        "Yes. Enable multi-currency under Settings > Pricing, then set prices per currency or let us convert them "
        "with daily exchange rates.",
    ),
    (
        "How do I change the e-mail address on my account?",
        "change-email",
        "Go to your profile, edit the e-mail field and confirm the change from the new address.",
    ),
    (
        "What are the API rate limits?",
        "api-limits",
        "The API allows 600 requests per minute per account on Business and 3,000 on Enterprise. Responses include "
        "headers with your remaining quota.",
    ),
    (
        "How do I create a product bundle?",
        "bundles",
        "Create a product of type 'Bundle' and add its components with quantities. Stock for the bundle is "
        "calculated from the components automatically.",
    ),
    (
        "Can I export all my data?",
        "export",
        "Yes. Settings > Data export creates a ZIP file with CSV files for products, stock, orders and customers.",
    ),
    (
        "How do webhooks work?",
        "webhooks",
        "Register an HTTPS endpoint under Settings > Webhooks and choose the events you want. We send a signed "
        "JSON payload and retry failed deliveries for up to 24 hours.",
    ),
    (
        "Why is my stock level different from Shopify?",
        "sync-differences",
        "Usually an order is still reserved or a sync is pending. Check Inventory > Sync log for the product; a "
        "manual 'Resync' fixes most differences.",
    ),
    (
        "How do I print shipping labels?",
        "shipping-labels",
        "Connect a carrier under Integrations > Shipping, then open an order and click 'Create label'.",
    ),
    (
        "Do you offer a discount for nonprofits?",
        "nonprofit",
        "Yes, registered nonprofits receive 30% off any annual plan. Contact sales with your registration details.",
    ),
    (
        "How do I delete a product?",
        "delete-product",
        "Open the product and choose Archive. Archived products disappear from lists but keep their order history.",
    ),
    (
        "What happens when my trial ends?",
        "trial",
        "Your account switches to read-only until you choose a plan. Nothing is deleted for 30 days.",
    ),
    (
        "How do I set user permissions?",
        "roles",
        "Under Settings > Roles you can create roles with permissions per area and assign them to users.",
    ),
    (
        "Can I connect more than one Shopify store?",
        "multi-store",
        "Yes, on the Business plan and above. Each store can map to its own warehouse or share one.",
    ),
)


def faq_question(rng: random.Random) -> tuple[int, str]:
    """A help-center question: a Zipf-like choice among the FAQ, sometimes with a slightly different wording."""
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(FAQ))]
    index = rng.choices(range(len(FAQ)), weights=weights)[0]
    question = FAQ[index][0]
    r = rng.random()
    if r < 0.15:
        question = question.lower().rstrip("?")
    elif r < 0.25:
        question = "Hi! " + question
    return index, question


def faq_answer(index: int) -> str:
    _, slug, answer = FAQ[index]
    return f"{answer} More details: /help/{slug}"


_KB_PARAGRAPHS = (
    "Before you start, make sure you have the Admin or Inventory Manager role, because the settings described "
    "here are hidden for other roles. Changes apply to all warehouses unless you scope them explicitly.",
    "Open Settings and choose {area}. The page is divided into General, Rules and Notifications. In General you "
    "decide whether the feature is active for the whole account or only for selected warehouses.",
    "Under Rules you can add conditions. Each rule combines a filter (for example product category, supplier or "
    "tag) with an action. Rules are evaluated from top to bottom and the first matching rule wins, so place the "
    "most specific rules first.",
    "A common setup for {use_case} is to create one rule per supplier with its own lead time. That way the "
    "reorder suggestions take the real delivery time into account instead of the account-wide default of "
    "seven days.",
    "If you sell through several channels, remember that reserved stock is subtracted before availability is "
    "published. A product with 40 units on hand and 12 units reserved shows 28 units in every connected channel.",
    "For example, suppose you have two warehouses, Hamburg and Leeds. You can allow transfers from Hamburg to "
    "Leeds automatically when Leeds drops below its reorder point, while keeping Hamburg's own safety stock.",
    "Notifications can be sent by e-mail, to a webhook, or to the dashboard. For teams that act quickly, "
    "webhooks into a chat tool work best; for weekly planning, the e-mail summary is usually enough.",
    "Related settings you may want to review are the rounding rules for purchase quantities, the default "
    "currency for supplier prices, and whether archived products should still be considered in forecasts.",
    "Keep in mind that changes are not retroactive: existing purchase orders and transfers keep the values they "
    "were created with. If you need to update them, use the bulk edit action on the list page.",
    "To verify the configuration, open the Simulation tab and run it for the last 30 days. The simulation shows "
    "which rules would have fired and what they would have suggested, without changing any data.",
    "If the results look wrong, check the audit log under Settings > Activity. Every change to {area} is "
    "recorded there with the user, the time and the previous value, which makes it easy to roll back.",
    "Finally, if you use the REST API, the same settings are available under the /v2/settings endpoint, so you "
    "can keep them in version control and apply them to several accounts consistently.",
    "In short, the recommended approach for {use_case} is to start with a small set of clear rules, monitor the "
    "suggestions for a couple of weeks, and then refine the thresholds based on what your team actually orders.",
)

_USE_CASES = (
    "seasonal products",
    "a multi-warehouse setup",
    "dropshipping suppliers",
    "perishable goods",
    "B2B customers with contract prices",
    "marketplace sellers",
    "a growing catalogue of bundles",
)


def kb_question(rng: random.Random) -> tuple[str, str, str]:
    area = pick(rng, PRODUCT_AREAS)
    use_case = pick(rng, _USE_CASES)
    question = pick(
        rng,
        (
            "How should I configure {area} for {use_case}?",
            "What is the best way to set up {area} if we have {use_case}?",
            "Can you explain how {area} works with {use_case}? We keep getting unexpected results.",
            "We are migrating to {company}. How do we set up {area} for {use_case}?",
        ),
    ).format(area=area, use_case=use_case, company=COMPANY)
    return area, use_case, question


def kb_context(rng: random.Random, area: str) -> str:
    excerpts = rng.sample(_KB_PARAGRAPHS, 3)
    return "\n\n".join(f"[KB-{rng.randrange(100, 999)}] " + e.format(area=area, use_case="this case") for e in excerpts)


def kb_answer(rng: random.Random, area: str, use_case: str, paragraphs: int) -> str:
    """A verbose answer: the long tail of outputs comes from `paragraphs` (drawn by the caller)."""
    offset = rng.randrange(len(_KB_PARAGRAPHS))
    body = []
    for i in range(paragraphs):
        text = _KB_PARAGRAPHS[(offset + i) % len(_KB_PARAGRAPHS)].format(area=area, use_case=use_case)
        body.append(text if i < len(_KB_PARAGRAPHS) else f"To repeat the point from step {i % 7 + 1}: {text}")
    return f"Great question! Here is a complete guide to {area} for {use_case}.\n\n" + "\n\n".join(body)


_ARENA_PROMPTS = (
    "Explain the difference between FIFO and weighted average cost for inventory valuation, with an example.",
    "Write a two-sentence product description for a stainless steel insulated water bottle.",
    "What are the pros and cons of holding safety stock in a central warehouse versus regional ones?",
    "Draft a polite e-mail to a supplier asking to move a delivery from Tuesday to Thursday.",
    "Summarize the main causes of the bullwhip effect in supply chains.",
    "Give three ideas to reduce return rates for online apparel stores.",
    "How do I calculate a reorder point when demand is seasonal?",
    "Translate 'Your order has shipped and will arrive in two days' into German, French and Spanish.",
    "What KPIs should a small e-commerce warehouse track weekly?",
    "Explain what an EDI 856 advance ship notice is in plain language.",
)


def arena_prompt(rng: random.Random) -> str:
    return pick(rng, _ARENA_PROMPTS)


def arena_answer(rng: random.Random, prompt: str, model: str) -> str:
    style = {"gpt-4o": "Here's a clear overview.", "gpt-4.1": "Sure — let's break it down.", "o4-mini": "Answer:"}
    points = rng.sample(_GENERIC_POINTS, rng.randrange(3, 6))
    return f"{style.get(model, 'Here is my answer.')} " + " ".join(points)


_GENERIC_POINTS = (
    "The key trade-off is between carrying cost and the risk of running out of stock.",
    "Start with the products that make up most of your revenue and measure their demand weekly.",
    "A simple spreadsheet model is often enough before investing in dedicated forecasting tools.",
    "Make sure your suppliers' lead times are measured rather than assumed.",
    "Regional warehouses shorten delivery times but split your safety stock across locations.",
    "Clear communication with suppliers usually resolves scheduling changes quickly.",
    "Review the numbers monthly and adjust thresholds as your sales mix changes.",
    "Automation helps most where decisions are frequent, repetitive and well understood.",
    "Customers value accurate delivery promises more than the fastest possible delivery.",
    "Document the process so that new team members apply it consistently.",
)


def email_thread(rng: random.Random, tenant: str) -> tuple[str, str]:
    a, b = rng.sample(FIRST_NAMES, 2)
    area = pick(rng, PRODUCT_AREAS)
    n = rng.randrange(2, 5)
    lines = []
    for i in range(n):
        sender = a if i % 2 == 0 else b
        body = pick(
            rng,
            (
                f"Hi, following up on our call about {area}. We'd like to roll it out to two more warehouses next "
                "month. Can you confirm the pricing for the extra seats?",
                f"Thanks for the quick reply. The quote looks fine, but legal needs the updated DPA before we sign. "
                f"Also, is {area} included in the {pick(rng, PLANS)} plan or is it an add-on?",
                "Quick update: our finance team approved the budget. We still need a date for the onboarding session "
                "and someone to help us map our SKUs.",
                f"Could we push the onboarding to the week of October {rng.randrange(12, 28)}? Half the team is at a "
                "trade fair before that.",
                "Attached is the list of 1,240 SKUs we want to import first. Please check whether the bundle "
                "structure works with your import template.",
            ),
        )
        lines.append(f"From: {sender} <{sender.lower()}@{tenant}.example>\n{body}")
    summary = (
        f"- {a} ({tenant}) wants to extend {area} to more warehouses.\n"
        f"- Open question: {pick(rng, ('pricing for extra seats', 'updated DPA for legal', 'onboarding date'))}.\n"
        f"- Next step: account manager to reply to {b} with {pick(rng, ('a revised quote', 'the DPA', 'dates'))}."
    )
    return "\n\n".join(lines), summary


def sql_question(rng: random.Random) -> tuple[str, str]:
    n = rng.choice((5, 10, 20))
    metric, sql_metric = pick(
        rng,
        (
            ("revenue", "SUM(o.total_amount)"),
            ("order count", "COUNT(*)"),
            ("average order value", "AVG(o.total_amount)"),
        ),
    )
    period = pick(rng, ("last month", "the last 90 days", "Q3 2026", "September 2026"))
    question = pick(
        rng,
        (
            f"Which {n} customers had the highest {metric} in {period}?",
            f"Show the top {n} customers by {metric} for {period}, with their country.",
            f"List {n} customers with the highest {metric} during {period} and their plan.",
        ),
    )
    answer = (
        "```sql\nSELECT c.customer_id, c.name, c.country, " + sql_metric + " AS metric\nFROM orders o\n"
        "JOIN customers c ON c.customer_id = o.customer_id\nWHERE o.tenant_id = :tenant_id\n"
        "  AND o.ordered_at >= DATE '2026-07-01' AND o.ordered_at < DATE '2026-10-01'\n"
        f"GROUP BY c.customer_id, c.name, c.country\nORDER BY metric DESC\nLIMIT {n};\n```\n"
        f"This returns the {n} customers with the highest {metric} in the period, largest first."
    )
    return question, answer


def digest_events(rng: random.Random, day: str) -> tuple[str, str, str]:
    name = pick(rng, FIRST_NAMES)
    events = []
    for _ in range(rng.randrange(5, 12)):
        events.append(
            pick(
                rng,
                (
                    f"- order SO-{rng.randrange(100000, 999999)} shipped ({rng.randrange(1, 9)} items)",
                    f"- low stock: SKU NW-{rng.randrange(1000, 9999)} has {rng.randrange(0, 9)} units left",
                    f"- purchase order PO-{rng.randrange(1000, 9999)} received in "
                    f"{pick(rng, ('Hamburg', 'Leeds', 'Reno'))}",
                    f"- {pick(rng, FIRST_NAMES)} joined the team as Inventory Manager",
                    f"- return R-{rng.randrange(10000, 99999)} received: damaged in transit",
                    f"- transfer T-{rng.randrange(100, 999)} from Hamburg to Leeds completed",
                ),
            )
        )
    events_text = f"User first name: {name}\nEvents for {day}:\n" + "\n".join(events)
    digest = (
        f"Good morning {name},\n\nOrders: {rng.randrange(2, 30)} orders shipped yesterday without issues.\n"
        f"Inventory: {rng.randrange(1, 5)} SKUs are running low — please review the reorder suggestions today.\n"
        "Team: nothing new.\n\nHave a great day!"
    )
    return name, events_text, digest


def research_question(rng: random.Random) -> str:
    return pick(
        rng,
        (
            "How large is the market for inventory software among mid-sized European retailers, and who are the "
            "main competitors?",
            "Should we build a native integration with Amazon Multi-Channel Fulfillment next year? Consider demand, "
            "effort and risks.",
            "What pricing models do inventory-management SaaS vendors use, and how could we move to usage-based "
            "pricing without upsetting existing customers?",
            "Which industries have the highest churn on our Team plan according to the public benchmarks, and what "
            "typically drives it?",
            "Assess the opportunity of offering demand forecasting as a paid add-on for Business customers.",
        ),
    )


def research_memo(rng: random.Random, sections: int) -> str:
    heads = ("Findings", "Market context", "Competitors", "Risks", "Uncertainties", "Recommendation")
    out = ["Memo"]
    for i in range(sections):
        out.append(f"\n{heads[i % len(heads)]}\n" + " ".join(rng.sample(_GENERIC_POINTS, 4)))
    return "\n".join(out)


_CHAT_OPENERS = (
    "Hi, {area} isn't syncing for our {plan} account since this morning.",
    "Hello, I need help with {area}. Some products show negative stock.",
    "Hey, our team can't see the purchase orders created yesterday in {area}.",
    "Hi there, I'm trying to set up {area} but I keep getting an error message.",
)
_CHAT_FOLLOWUPS = (
    "I tried that, but nothing changed. The numbers are still off by a few units.",
    "Ok, I found the setting. It was set to 'manual'. Should I switch it to automatic?",
    "Yes, I'm an admin on the account.",
    "The error says 'mapping conflict for SKU NW-{n}'. What does that mean?",
    "It's about {n} products, mostly in the Hamburg warehouse.",
    "Done. The sync log now shows a green check for most products, but a few are still pending.",
    "We use Chrome on Windows, and it happens on the mobile app too.",
    "Should I also re-run the import from last week, or will that create duplicates?",
    "Great, that seems to have worked for the first batch. Let me check the rest.",
    "One more thing: can I get an e-mail when this happens again?",
    "Thanks. And what about the orders that were placed while the sync was broken?",
    "Perfect, thank you so much for your help!",
)
_CHAT_REPLIES = (
    "Thanks for the details! Let's check the sync log first: open Integrations > Sync log and filter by the last "
    "24 hours. Do you see any entries marked in red?",
    "That explains it. A manual mapping means new SKUs aren't linked automatically. Switching to automatic is "
    "safe; existing mappings stay as they are. Could you try it and tell me what the log shows?",
    "A mapping conflict means two products in the store use the same SKU. Open the product NW-{n}, check the "
    "'Linked listings' section and remove the duplicate link. Then click 'Resync'.",
    "Good news — that's expected for a few minutes after a resync. Pending items are processed in batches of 100. "
    "Let's give it five minutes and then check again.",
    "Re-running the import would create duplicates, so please don't. The sync will pick up the changes from last "
    "week automatically once the mapping is fixed.",
    "Orders placed during the outage were stored and will be applied in order, so stock levels will be corrected "
    "without any action from you.",
    "You can enable that under Settings > Notifications > Sync errors. Choose e-mail and add your team's address.",
    "I'm glad it's working again! Is there anything else I can help you with today?",
)


def chat_turn_user(rng: random.Random, turn: int, plan: str) -> str:
    if turn == 0:
        return pick(rng, _CHAT_OPENERS).format(area=pick(rng, PRODUCT_AREAS), plan=plan)
    return pick(rng, _CHAT_FOLLOWUPS).format(n=rng.randrange(10, 9999))


def chat_turn_reply(rng: random.Random) -> str:
    return pick(rng, _CHAT_REPLIES).format(n=rng.randrange(1000, 9999))


def policy_question(rng: random.Random) -> str:
    return pick(
        rng,
        (
            "How many days of annual leave do I get if I started in {month}?",
            "Can I work from {country} for three weeks in December?",
            "What is the parental leave policy for secondary caregivers?",
            "Do I need approval for a hotel that costs more than the limit?",
            "How much is my learning budget and can I use it for a conference in {country}?",
            "What should I do if my laptop was stolen on a business trip?",
            "A supplier sent me a gift basket. Do I need to declare it?",
            "How long is the probation period and what is the notice during it?",
            "Is overtime paid for salaried employees?",
            "Can unused leave be carried over into next year in {country}?",
        ),
    ).format(month=pick(rng, _MONTHS), country=pick(rng, COUNTRIES))


def policy_answer(rng: random.Random) -> str:
    return " ".join(rng.sample(_POLICY_CLAUSES, 3)) + " (Section: " + pick(rng, [t for t, _ in _POLICY_TOPICS]) + ")"


def insights_question(rng: random.Random) -> str:
    data = (
        f'{{"period": "2026-09", "revenue": {rng.randrange(40000, 900000)}, "orders": {rng.randrange(300, 9000)}, '
        f'"return_rate_pct": {rng.randrange(10, 120) / 10}, "stock_cover_days": {{"NW-{rng.randrange(1000, 9999)}": '
        f'{rng.randrange(2, 40)}, "NW-{rng.randrange(1000, 9999)}": {rng.randrange(2, 40)}}}, '
        f'"overdue_pos": {rng.randrange(0, 6)}}}'
    )
    question = pick(
        rng,
        (
            "What should I worry about this month?",
            "Why did our revenue change compared with August?",
            "Which products need reordering first?",
            "Give me a summary for the board meeting.",
        ),
    )
    return f"Data: {data}\n\nQuestion: {question}"


def insights_answer(rng: random.Random) -> str:
    return (
        f"Summary: revenue changed by {rng.randrange(-150, 250) / 10}% versus the previous period while order "
        f"volume moved by {rng.randrange(-80, 120) / 10}%.\n\nRisks:\n- "
        + "\n- ".join(rng.sample(_GENERIC_POINTS, 2))
        + "\n\nRecommended actions:\n- "
        + "\n- ".join(rng.sample(_GENERIC_POINTS, 2))
    )


def code_diff(rng: random.Random) -> str:
    module = pick(rng, ("inventory/sync.py", "orders/export.py", "billing/invoices.py", "api/v2/settings.py"))
    func = pick(rng, ("apply_stock_delta", "export_invoices", "list_transfers", "update_reorder_point"))
    var = pick(rng, ("rows", "items", "deltas", "lines"))
    return (
        f"diff --git a/{module} b/{module}\n--- a/{module}\n+++ b/{module}\n@@ -{rng.randrange(10, 300)},7 +"
        f"{rng.randrange(10, 300)},9 @@ def {func}(session, tenant_id, {var}):\n"
        f'-    for row in {var}:\n-        session.execute(f"UPDATE stock SET on_hand = {{row.qty}} WHERE id = '
        f'{{row.id}}")\n+    for row in {var}[:{rng.choice((100, 500, 1000))}]:\n'
        "+        try:\n+            session.execute(UPDATE_STOCK, {'qty': row.qty, 'id': row.id})\n"
        "+        except Exception:\n+            pass\n"
    )


def code_review(rng: random.Random) -> str:
    return pick(
        rng,
        (
            "1. High: the `except Exception: pass` silently drops failed stock updates; log with the tenant id and "
            "re-raise. 2. Medium: slicing the list truncates large batches without telling the caller; "
            "paginate instead.",
            "1. High: exceptions are swallowed, so a failed update leaves stock inconsistent. 2. Good: the "
            "parameterized query fixes the SQL injection in the old f-string. 3. Low: add a test for an empty batch.",
            "Looks mostly fine. One medium issue: the slice silently ignores rows beyond the limit — process them in "
            "chunks or raise an error.",
        ),
    )


def contract_question(rng: random.Random) -> str:
    return pick(
        rng,
        (
            "What is the notice period for non-renewal?",
            "Is there a cap on price increases at renewal?",
            "How quickly must a data breach be reported to us?",
            "What is the liability cap and what is excluded from it?",
            "Can we object to new subprocessors?",
            "What happens to our data after termination?",
            "Which law governs the agreement?",
            "Are service credits automatic or do we need to claim them?",
        ),
    )


def contract_answer(rng: random.Random) -> str:
    return (
        f"According to clause {rng.randrange(1, 11)}, "
        + pick(rng, _POLICY_CLAUSES[:4]).lower()
        + " "
        + pick(
            rng,
            (
                "This is a standard position.",
                "This is more favourable than our template.",
                "I recommend asking legal to confirm this point.",
            ),
        )
    )


def batch_ticket_thread(rng: random.Random, tenant: str) -> tuple[str, str]:
    text, category = ticket(rng, tenant)
    agent = pick(
        rng,
        (
            "Agent: Thanks for reaching out. I've checked the account and corrected the issue; "
            "it should be visible now.",
            "Agent: I've escalated this to our engineering team and will update you within 24 hours.",
            "Agent: Could you send a screenshot of the error so we can investigate?",
        ),
    )
    customer = pick(
        rng,
        (
            "Customer: Thanks, that fixed it.",
            "Customer: Still not working, please check again.",
            "Customer: Screenshot attached.",
        ),
    )
    summary = (
        f"The customer reported a {category.replace('_', ' ')} issue. The agent "
        + pick(rng, ("fixed the account configuration.", "escalated it to engineering.", "asked for more details."))
        + " "
        + pick(rng, ("The issue was resolved.", "The issue is still open.", "Resolution is pending."))
    )
    return f"Customer: {text}\n{agent}\n{customer}", summary
