#!/usr/bin/env python3
"""The pages in a real headless Chromium, driven by Selenium, against a running hub (the demo:
a real broker, simulated meters, the car share). For each role: log in, do the main task end to
end, check every page visited with axe-core (WCAG 2.1 A and AA), take screenshots at phone and
desktop widths, log out. Run by `BrowserPagesTests` (IntegrationTests), which starts the hub.

Exit status 0 when every check passed; otherwise each failure is printed and the status is 1.
"""
import argparse
import datetime
import json
import os
import re
import sys
import urllib.request
import zoneinfo

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
failures = []
checked_pages = set()


def fail(message):
    failures.append(message)
    print("FAIL: " + message, flush=True)


def check(condition, message):
    if not condition:
        fail(message)
    return condition


def euros(cents):
    """12,40 € with a narrow no-break space, as the pages write it."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    whole = f"{cents // 100:,}".replace(",", "\u202f")
    return f"{sign}{whole},{cents % 100:02d}\u202f€"


class Hub:
    def __init__(self, base, password):
        self.base = base.rstrip("/")
        self.password = password
        self.tokens = {}

    def token(self, name):
        if name not in self.tokens:
            body = json.dumps({"name": name, "password": self.password}).encode()
            request = urllib.request.Request(self.base + "/api/v1/sessions", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request) as answer:
                self.tokens[name] = json.load(answer)["token"]
        return self.tokens[name]

    def api(self, name, path):
        request = urllib.request.Request(self.base + path, headers={"Authorization": "Bearer " + self.token(name)})
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)


class Browser:
    def __init__(self, hub, shots):
        options = Options()
        options.binary_location = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
        for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=fr-FR", "--window-size=1280,900"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(os.environ.get("HUB_CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
        self.driver.set_page_load_timeout(60)
        self.hub = hub
        self.shots = shots

    def quit(self):
        self.driver.quit()

    def get(self, path):
        self.driver.get(self.hub.base + path)

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def h1(self):
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def axe(self, label):
        """Every WCAG 2.1 A/AA rule of axe-core on the page as it is now: lang, labels and contrast among them."""
        axe = Axe(self.driver)
        axe.inject()
        # The axe-core bundled by axe-selenium-python names WCAG 2.1 A rules under wcag2a: ask for
        # the tags it knows among WCAG 2.0/2.1 A and AA, so no rule of those levels is left out.
        known = self.driver.execute_script("return Array.from(new Set(axe.getRules().flatMap(r => r.tags)))")
        tags = [tag for tag in WCAG if tag in known]
        results = self.driver.execute_script(
            "return axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}}).then(r => ({violations: r.violations, passes: r.passes.length}))", tags)
        check(results["passes"] > 5, f"axe on {label}: only {results['passes']} rules passed: was axe really run?")
        checked_pages.add(label)
        for violation in results["violations"]:
            targets = "; ".join(",".join(node["target"]) for node in violation["nodes"][:3])
            fail(f"axe on {label}: {violation['id']} ({violation['impact']}): {violation['help']} at {targets}")

    def screenshot(self, name):
        """The whole page at phone (390 px) and desktop (1280 px) width."""
        for width in (390, 1280):
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
            self.driver.set_window_size(width, min(max(int(height) + 40, 600), 8000))
            overflow = self.driver.execute_script("return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1")
            check(not overflow, f"{name} at {width} px: the page is wider than the screen")
            self.driver.save_screenshot(os.path.join(self.shots, f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 900)

    def visit(self, path, name, expect_h1=None):
        self.get(path)
        if expect_h1:
            check(expect_h1 in self.h1(), f"{path}: expected the title «{expect_h1}», got «{self.h1()}»")
        size = self.driver.execute_script("return getComputedStyle(document.body).fontSize")
        check(float(size.replace("px", "")) >= 18, f"{path}: body text is {size}, under 18 px")
        self.axe(path)
        self.screenshot(name)

    def field(self, name):
        return self.driver.find_element(By.NAME, name)

    def fill(self, name, value):
        element = self.field(name)
        if element.get_attribute("type") in ("date", "time"):
            self.driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)

    def choose(self, name, value):
        self.driver.find_element(By.CSS_SELECTOR, f"input[name='{name}'][value='{value}']").click()

    def submit(self, button_text):
        buttons = [b for b in self.driver.find_elements(By.CSS_SELECTOR, "main button[type=submit]") if b.text.strip() == button_text]
        if not check(buttons, f"{self.driver.current_url}: no button «{button_text}»"):
            raise RuntimeError("missing button")
        self.click_and_wait(buttons[0])

    def click_and_wait(self, element):
        """Clicks and waits for the next page to replace this one."""
        self.driver.execute_script("window.__hubOldPage = true")
        element.click()

        def replaced(driver):
            try:
                return driver.execute_script("return document.readyState === 'complete' && window.__hubOldPage === undefined")
            except Exception:
                return False

        WebDriverWait(self.driver, 30, poll_frequency=0.05).until(replaced)

    def login(self, name, password=None):
        self.get("/connexion")
        self.fill("name", name)
        self.fill("password", password or self.hub.password)
        self.submit("Se connecter")

    def logout(self):
        self.click_and_wait(self.driver.find_element(By.CSS_SELECTOR, "form.logout button"))
        check("/connexion" in self.driver.current_url and "Vous êtes déconnecté" in self.text(), "logout did not come back to the login page")
        self.get("/")
        check("/connexion" in self.driver.current_url, "after logout, / still opens a page")


def paris_today():
    return datetime.datetime.now(PARIS).date()


def resident(browser, hub):
    browser.visit("/connexion", "login", "Se connecter")
    # A wrong password: said in words on the login page, which still passes axe.
    browser.fill("name", "demo-resident")
    browser.fill("password", "not the password")
    browser.submit("Se connecter")
    check("Identifiant ou mot de passe incorrect" in browser.text(), "a wrong password is not explained")
    browser.axe("/connexion (erreur)")
    browser.screenshot("login-error")
    browser.login("demo-resident")
    check(browser.driver.current_url.endswith("/economies"), f"the resident lands on {browser.driver.current_url}")
    browser.visit("/economies", "resident-savings", "Mes économies")
    # The page says the same saving as the API, to the cent.
    today = paris_today()
    first = today.replace(day=1)
    me = hub.api("demo-resident", "/api/v1/me")
    report = hub.api("demo-resident", f"/api/v1/dwellings/{me['dwelling']}/energy?from={first}&to={today}")
    amounts = browser.driver.find_elements(By.CSS_SELECTOR, "p.lead strong.big")
    if amounts:
        shown = amounts[0].text
        check(shown == euros(report["savings_cents"]), f"the resident's page says {shown!r}, the API {euros(report['savings_cents'])!r}")
        check(browser.driver.find_elements(By.CSS_SELECTOR, "svg[role=img]"), "no chart on the savings page")
    else:
        # In the first hours of a month (Paris time) no slot of it is computed yet: the page says
        # so in words. On any other day the month's saving must be there.
        check(today.day == 1 and "pas encore transmis de relevés" in browser.text(),
              f"no saving on the resident's page on {today}: {browser.text()[:300]}")
    check("apparaîtra sur une prochaine facture" in browser.text(), "the savings page does not explain why the bill shows it later")
    browser.visit("/voiture", "resident-car", "Mes réservations")
    browser.visit("/quartier", "not-found", "Page introuvable")
    browser.visit("/voiture/demande", "resident-ask", "Demander un trajet")
    tomorrow = today + datetime.timedelta(days=9)
    browser.fill("date", tomorrow.isoformat())
    browser.fill("start", "15:00")
    browser.fill("end", "16:00")
    browser.fill("purpose", "Courses")
    browser.submit("Envoyer ma demande")
    check("Votre demande est envoyée" in browser.text(), f"the resident's request was not sent: {browser.text()[:300]}")
    browser.axe("/voiture/demande (envoyée)")
    browser.logout()


def association(browser, hub):
    browser.login("demo-association")
    check(browser.driver.current_url.endswith("/quartier"), f"the association lands on {browser.driver.current_url}")
    browser.visit("/quartier", "association-estate", "Le quartier")
    browser.visit("/voiture/semaine", "association-week", "La semaine de la voiture")
    browser.visit("/adherents", "association-members", "Adhérents")
    browser.visit("/adherents/nouveau", "association-new-member", "Nouvel adhérent")
    browser.fill("name", "Test Navigateur")
    browser.fill("phone", "06 00 00 00 00")
    browser.submit("Inscrire l'adhérent")
    check("Test Navigateur est inscrit" in browser.text(), f"the new member was not registered: {browser.text()[:300]}")
    renew = browser.driver.find_elements(By.XPATH, "//form[contains(@action,'/adherents/adhesion')]//button")
    if check(renew, "no button to record a membership for a member without one"):
        browser.click_and_wait(renew[0])
        check("Adhésion de" in browser.text() and "à payer" in browser.text(), f"the membership was not recorded: {browser.text()[:300]}")
    browser.axe("/adherents (après inscription)")
    browser.visit("/caisse", "association-cash", "Livre de caisse")
    browser.visit("/voiture/feuille", "association-driver-sheet", "Feuille du chauffeur")
    browser.visit("/reservations/nouvelle", "association-book", "Réserver pour un habitant")
    # Book yesterday 21:00-22:00 for the first member, with the demo's volunteer driver: the driver logs it next.
    # After the demo's own trips of that day (they end before 19:00): the trip form starts from the
    # car's last odometer reading, which must not come after the booking (on a day after a weekday
    # the demo's morning trips made the test's 07:00 trip end beyond their readings).
    riders = Select(browser.field("rider"))
    rider_value = riders.options[1].get_attribute("value")
    riders.select_by_value(rider_value)
    other_value = riders.options[2].get_attribute("value") if len(riders.options) > 2 else rider_value
    day = paris_today() - datetime.timedelta(days=1)
    browser.fill("date", day.isoformat())
    browser.fill("start", "21:00")
    browser.fill("end", "22:00")
    browser.fill("purpose", "Test du navigateur")
    driver_select = Select(browser.field("driver"))
    driver_select.select_by_index(1)
    browser.submit("Réserver la voiture")
    notice = browser.text()
    match = re.search(r"réservation n° (\d+)", notice)
    check(match is not None and "La voiture est réservée pour" in notice, f"the booking was not confirmed: {notice[:300]}")
    booking = int(match.group(1)) if match else None
    # A second one just after, that the driver will note on paper and staff will type in.
    Select(browser.field("rider")).select_by_value(rider_value)
    browser.fill("date", day.isoformat())
    browser.fill("start", "22:15")
    browser.fill("end", "22:45")
    Select(browser.field("driver")).select_by_index(1)
    browser.submit("Réserver la voiture")
    second = re.search(r"réservation n° (\d+)", browser.text())
    check(second is not None, f"the second booking was not confirmed: {browser.text()[:300]}")
    paper = int(second.group(1)) if second else None
    # The same slot for someone else: refused, with the message next to the start time, and what was typed kept.
    Select(browser.field("rider")).select_by_value(other_value)
    browser.fill("date", day.isoformat())
    browser.fill("start", "21:30")
    browser.fill("end", "22:30")
    browser.submit("Réserver la voiture")
    errors = browser.driver.find_elements(By.ID, "start-error")
    check(errors and "déjà réservée" in errors[0].text, f"a double booking was not refused next to the start field: {browser.text()[:400]}")
    check(browser.field("end").get_attribute("value") == "22:30", "the refused form lost what was typed")
    browser.axe("/reservations/nouvelle (refusée)")
    browser.screenshot("association-book-refused")
    # A payment with its receipt number.
    browser.visit("/paiements/nouveau", "association-payment", "Enregistrer un paiement")
    Select(browser.field("member")).select_by_value(rider_value)
    browser.fill("amount", "8")
    browser.choose("method", "cash")
    receipt = "T" + datetime.datetime.now().strftime("%H%M%S")
    browser.fill("receipt", receipt)
    browser.submit("Enregistrer le paiement")
    check(f"reçu n° {receipt}" in browser.text() and "enregistré" in browser.text(), f"the payment was not recorded: {browser.text()[:300]}")
    browser.logout()
    return booking, paper, int(rider_value)


def driver_role(browser, hub, booking, rider):
    before = hub.api("demo-staff", f"/api/v1/carshare/members/{rider}/statement")["balance_cents"]
    browser.login("demo-driver")
    check(browser.driver.current_url.endswith("/missions"), f"the driver lands on {browser.driver.current_url}")
    browser.visit("/missions", "driver-missions", "Mes trajets à faire")
    links = browser.driver.find_elements(By.CSS_SELECTOR, f"a[href='/trajets/nouveau?reservation={booking}']")
    check(links, f"the driver's page has no link to log booking {booking}")
    browser.get(f"/trajets/nouveau?reservation={booking}")
    check(browser.h1() == "Noter un trajet", "the trip form did not open")
    start = browser.field("start_odometer_km").get_attribute("value")
    check(start.isdigit(), f"the trip form is not pre-filled with the car's last odometer reading ({start!r})")
    check(browser.driver.find_element(By.CSS_SELECTOR, "input[name=riders]").is_selected(), "the rider is not ticked")
    browser.axe("/trajets/nouveau")
    browser.screenshot("driver-trip")
    key = browser.field("idempotency_key").get_attribute("value")
    values = {"end_odometer_km": str(int(start) + 12), "battery_start_pct": "80", "battery_end_pct": "71"}
    for name, value in values.items():
        browser.fill(name, value)
    browser.choose("fee", "owed")
    browser.submit("Enregistrer le trajet")
    check("Trajet enregistré" in browser.text(), f"the trip was not recorded: {browser.text()[:800]}")
    after = hub.api("demo-staff", f"/api/v1/carshare/members/{rider}/statement")
    check(after["balance_cents"] == before - 200, f"the member's balance went from {before} to {after['balance_cents']}, not 2 € lower")
    # The phone resends the same form (same idempotency key): one trip, and the page says so.
    browser.get(f"/trajets/nouveau?reservation={booking}")
    browser.driver.execute_script("document.querySelector('input[name=idempotency_key]').value = arguments[0]", key)
    browser.fill("start_odometer_km", start)
    for name, value in values.items():
        browser.fill(name, value)
    browser.choose("fee", "owed")
    browser.submit("Enregistrer le trajet")
    check("déjà enregistré" in browser.text(), f"the resubmitted trip form did not say it was already recorded: {browser.text()[:400]}")
    again = hub.api("demo-staff", f"/api/v1/carshare/members/{rider}/statement")
    trips = [t for t in again["trips"] if t.get("booking") == booking]
    check(len(trips) == 1, f"booking {booking} has {len(trips)} trips after a resubmission")
    check(again["balance_cents"] == before - 200, "the resubmission charged the member again")
    browser.visit("/recharges/nouvelle", "driver-charge", "Noter une recharge")
    browser.fill("energy_kwh", "20,5")
    browser.fill("cost", "0")
    browser.choose("method", "none")
    browser.submit("Enregistrer la recharge")
    check("Recharge de 20,5" in browser.text(), f"the charge was not recorded: {browser.text()[:300]}")
    browser.logout()
    return int(start) + 12


def staff(browser, hub, paper, odometer):
    browser.login("demo-staff")
    check(browser.driver.current_url.endswith("/saisie/semaine"), f"staff land on {browser.driver.current_url}")
    # The paper sheet of the week: the row of the second booking, typed in.
    yesterday = paris_today() - datetime.timedelta(days=1)
    browser.visit(f"/saisie/semaine?du={yesterday.isoformat()}", "staff-paper-week", "Saisir une feuille papier")
    if paper is not None:
        for column, value in [("start_km", odometer), ("end_km", odometer + 8), ("battery_start", 71), ("battery_end", 64)]:
            browser.fill(f"b{paper}_{column}", str(value))
        browser.choose(f"b{paper}_fee", "cash")
        browser.submit("Enregistrer les trajets de la feuille")
        check("1 trajet enregistré" in browser.text(), f"the paper sheet's row was not recorded: {browser.text()[:500]}")
        rows = [r for r in browser.driver.find_elements(By.CSS_SELECTOR, "tbody tr") if f"n° {paper}" in r.text]
        check(rows and "trajet enregistré" in rows[0].text, "the recorded row is not marked as recorded")
        browser.axe("/saisie/semaine (enregistrée)")
    browser.visit("/boitiers", "staff-devices", "Boîtiers")
    browser.visit("/messages-refuses", "staff-quarantine", "Messages refusés")
    browser.visit("/registre", "staff-registry", "Registre des logements")
    browser.visit("/releves", "staff-statements", "Relevés mensuels")
    browser.visit("/comptes", "staff-accounts", "Comptes")
    browser.visit("/comptes/nouveau", "staff-new-account", "Créer un compte")
    name = "test.navigateur." + datetime.datetime.now().strftime("%H%M%S")
    browser.fill("name", name)
    browser.choose("role", "resident")
    browser.fill("dwelling", "DEMO-OUT-A-02")
    browser.submit("Créer le compte et imprimer la fiche")
    check(name in browser.text() and "Mot de passe provisoire" in browser.text(), "the access sheet was not shown")
    browser.axe("/comptes/fiche")
    browser.screenshot("staff-access-sheet")
    password = browser.driver.find_element(By.CSS_SELECTOR, "dl.facts dd code").text
    browser.logout()
    # The new resident logs in with the sheet's password and must choose their own first.
    browser.login(name, password)
    check(browser.driver.current_url.endswith("/mot-de-passe"), f"a first login did not ask for a new password ({browser.driver.current_url})")
    browser.axe("/mot-de-passe")
    browser.screenshot("first-password")
    browser.fill("current", password)
    browser.fill("password", "une phrase facile")
    browser.fill("confirm", "une phrase facile")
    browser.submit("Enregistrer mon mot de passe")
    check("Votre nouveau mot de passe est enregistré" in browser.text(), f"the password was not changed: {browser.text()[:300]}")
    browser.get("/")
    check(browser.driver.current_url.endswith("/economies"), "after choosing a password, the resident does not reach their savings")
    browser.logout()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--shots", required=True)
    args = parser.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    hub = Hub(args.base, args.password)
    browser = Browser(hub, args.shots)
    try:
        print("resident", flush=True)
        resident(browser, hub)
        print("association", flush=True)
        booking, paper, rider = association(browser, hub)
        print("driver", flush=True)
        odometer = driver_role(browser, hub, booking, rider) if booking is not None else None
        print("staff", flush=True)
        staff(browser, hub, paper if odometer is not None else None, odometer)
    except Exception as error:  # a missing element: report it with the page it was on
        fail(f"{type(error).__name__}: {error} (on {browser.driver.current_url})")
    finally:
        browser.quit()
    print(f"pages checked with axe-core: {len(checked_pages)}; screenshots in {args.shots}")
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all browser checks passed")


if __name__ == "__main__":
    main()
